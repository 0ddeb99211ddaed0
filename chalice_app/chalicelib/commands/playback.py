"""Playback controls: they change the guild's *desired* state; the voice task applies it.

/skip /pause /resume /stop /seek need something playing; /volume, /loop, /filter, /speed and
/pitch may be set any time (the voice task applies them to the track playing and every one after).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from chalicelib.commands.base import Choice, Command, CommandContext, Option, is_dj, require_adding, require_control
from chalicelib.replies import Reply
from timmybot import text
from timmybot.discord import ui
from timmybot.discord.types import OptionType
from timmybot.errors import InvalidInputError, NothingPlayingError, PermissionDeniedError
from timmybot.filters import (
    DESCRIPTIONS,
    LABELS,
    PITCH_MAX,
    PITCH_MIN,
    SPEED_MAX,
    SPEED_MIN,
    FilterPreset,
    Filters,
    normal_speed,
)
from timmybot.models import GuildRecord, LoopMode
from timmybot.store.base import Store

QUEUE_POSITION_MAX = 5000
VOLUME_MIN = 0
VOLUME_MAX = 150
TIME_MAX_LENGTH = 12
_TIME_RE = re.compile(r"(?:(?:(\d{1,2}):)?(\d{1,2}):)?(\d{1,6})")
TIME_EXAMPLES = "Use `mm:ss` (1:30), `h:mm:ss` (1:02:03) or seconds (90)."


def parse_timestamp(text: str) -> int:
    """Seconds from ``mm:ss``, ``h:mm:ss`` or plain seconds; InvalidInputError otherwise."""
    cleaned = text.strip()
    match = _TIME_RE.fullmatch(cleaned) if len(cleaned) <= TIME_MAX_LENGTH else None
    if match is None:
        raise InvalidInputError(f"`{text[:TIME_MAX_LENGTH]}` is not a time. {TIME_EXAMPLES}")
    hours_s, minutes_s, seconds_s = match.groups()
    hours = int(hours_s or 0)
    minutes = int(minutes_s or 0)
    seconds = int(seconds_s)
    if minutes_s is not None and seconds >= 60:
        raise InvalidInputError(f"Seconds must be below 60 in `{cleaned}`. {TIME_EXAMPLES}")
    if hours_s is not None and minutes >= 60:
        raise InvalidInputError(f"Minutes must be below 60 in `{cleaned}`. {TIME_EXAMPLES}")
    return hours * 3600 + minutes * 60 + seconds


def _playing(ctx: CommandContext, store: Store) -> GuildRecord:
    """The guild record, after checking something plays and the member may control it."""
    record = store.get_guild(ctx.guild_id)
    if record.actual.now_playing is None:
        raise NothingPlayingError()
    require_control(ctx, record)
    return record


def _controllable(ctx: CommandContext, store: Store) -> GuildRecord:
    record = store.get_guild(ctx.guild_id)
    require_control(ctx, record)
    return record


def _title(record: GuildRecord) -> str:
    entry = record.actual.now_playing
    return f"**{text.quote(entry.title, text.IN_SENTENCE)}**" if entry is not None else "the track"


VOTE_SKIP_MIN_LISTENERS = 3


def votes_needed(listeners: int, percent: int) -> int:
    """More than ``percent`` % of the listeners (a majority at 50 %), at least one, at most all."""
    return max(1, min(listeners, listeners * percent // 100 + 1))


def skip(ctx: CommandContext, store: Store) -> Reply:
    record = _playing(ctx, store)
    listeners = record.actual.listener_ids
    # In DJ-only mode only DJs got this far (require_control), and they never need a vote.
    votes_off = not record.settings.vote_skip or record.settings.dj_only
    if is_dj(ctx, record) or votes_off or len(listeners) < VOTE_SKIP_MIN_LISTENERS:
        store.skip(ctx.guild_id)
        return Reply.message(f"⏭ <@{ctx.user_id}> skipped {_title(record)}.")
    return _vote_skip(ctx, store, record)


def skip_to(ctx: CommandContext, store: Store) -> Reply:
    """/skipto N: play queue position N next and skip the current track (never a vote).

    Who may: a DJ (the DJ role, Manage Server, alone with the bot), or whoever requested every track
    it would skip (the current one and the ones before N). In DJ-only mode, DJs only."""
    position = ctx.int_option("position")
    record = _playing(ctx, store)

    def may_skip(current: GuildRecord, passed: Sequence[str]) -> None:
        if is_dj(ctx, current):
            return
        playing = current.actual.now_playing
        requesters = {playing.requester_id} if playing is not None else set()
        requesters |= {entry.requester_id for entry in store.get_entries(ctx.guild_id, list(passed))}
        if requesters - {ctx.user_id}:
            raise PermissionDeniedError(
                "You can only skip over tracks you added yourself. A DJ or a member with Manage Server can skip to "
                "any of them, or use /skip to start a vote."
            )

    written, passed = store.skip_to(ctx.guild_id, position, check=may_skip)
    target = store.get_entries(ctx.guild_id, written.queue[:1])
    title = f"**{text.quote(target[0].title, text.IN_SENTENCE)}**" if target else f"track {position}"
    if not passed:
        return Reply.message(f"⏭ <@{ctx.user_id}> skipped {_title(record)}; {title} is next.")
    count = f"{len(passed)} {'track' if len(passed) == 1 else 'tracks'}"
    where = f"moved {count} to the end (loop queue)" if written.desired.loop is LoopMode.QUEUE else f"dropped {count}"
    return Reply.message(f"⏭ <@{ctx.user_id}> skipped to {title} and {where}.")


def back(ctx: CommandContext, store: Store) -> Reply:
    """/back: the previous track again, now; the current one goes back to the head (never a vote).
    Who may: as for "play now" (a DJ, or whoever added the current track)."""
    from chalicelib.commands.play import require_interrupt  # noqa: PLC0415 - the same rule as play now
    from timmybot.controls import go_back  # noqa: PLC0415

    record = store.get_guild(ctx.guild_id)
    if record.actual.now_playing is not None:
        require_control(ctx, record)
        require_interrupt(ctx, record, action="go back from it.")
    else:
        require_adding(ctx, record)
    result = go_back(
        store, ctx.guild_id, interaction_id=ctx.interaction_id, user_id=ctx.user_id, cap=ctx.settings.queue_cap,
        now=ctx.now,
    )  # fmt: skip
    title = text.quote(result.previous.title, text.IN_SENTENCE)
    if record.actual.now_playing is None:
        return Reply.message(f"⏮ <@{ctx.user_id}> queued **{title}** again.")
    return Reply.message(f"⏮ <@{ctx.user_id}> went back to **{title}**; {_title(record)} plays after it.")


def _vote_skip(ctx: CommandContext, store: Store, record: GuildRecord) -> Reply:
    """With 3+ listeners a skip is a vote; the vote that reaches the threshold skips (atomically)."""
    playing = record.actual.now_playing
    assert playing is not None
    outcome: dict[str, int | bool] = {}

    def change(current: GuildRecord) -> GuildRecord:
        entry = current.actual.now_playing
        if entry is None or entry.entry_id != playing.entry_id:
            outcome.update(moved_on=True)
            return current
        listeners = set(current.actual.listener_ids)
        votes = set(current.skip_votes) if current.skip_votes_entry == entry.entry_id else set()
        votes = (votes | {ctx.user_id}) & listeners
        needed = votes_needed(len(listeners), current.settings.vote_skip_percent)
        outcome.update(votes=len(votes), needed=needed, skipped=len(votes) >= needed)
        if len(votes) >= needed:
            desired = replace(current.desired, skip_seq=current.desired.skip_seq + 1)
            return current.evolve(desired=desired, skip_votes=(), skip_votes_entry=None, last_active=ctx.now)
        return current.evolve(skip_votes=tuple(sorted(votes)), skip_votes_entry=entry.entry_id)

    store.update_guild(ctx.guild_id, change)
    if outcome.get("moved_on"):
        return Reply.private("That track already ended.")
    if outcome["skipped"]:
        return Reply.message(f"⏭ Vote passed ({outcome['votes']}/{outcome['needed']}): skipping {_title(record)}.")
    return Reply.message(
        f"🗳 <@{ctx.user_id}> voted to skip {_title(record)}: {outcome['votes']}/{outcome['needed']} votes. "
        "A DJ can skip right away."
    )


def pause(ctx: CommandContext, store: Store) -> Reply:
    record = _playing(ctx, store)
    if record.desired.paused:
        return Reply.private("It's already paused. Use /resume to continue.")
    store.pause(ctx.guild_id)
    return Reply.message(f"⏸ <@{ctx.user_id}> paused {_title(record)}.")


def resume(ctx: CommandContext, store: Store) -> Reply:
    record = _playing(ctx, store)
    if not record.desired.paused:
        return Reply.private("It's not paused. Use /pause to pause it.")
    store.resume(ctx.guild_id)
    return Reply.message(f"▶ <@{ctx.user_id}> resumed {_title(record)}.")


def toggle_pause(ctx: CommandContext, store: Store) -> Reply:
    """The ⏯ button: pause when playing, resume when paused."""
    record = _playing(ctx, store)
    return resume(ctx, store) if record.desired.paused else pause(ctx, store)


def stop(ctx: CommandContext, store: Store) -> Reply:
    """Stop the current track and clear the queue; the voice task leaves the channel and exits at once."""
    _playing(ctx, store)
    cleared = store.clear_queue(ctx.guild_id)
    store.stop(ctx.guild_id)
    suffix = f" and cleared the queue ({cleared} {'track' if cleared == 1 else 'tracks'})" if cleared else ""
    return Reply.message(f"⏹ <@{ctx.user_id}> stopped the music{suffix}.")


def seek(ctx: CommandContext, store: Store) -> Reply:
    target_s = parse_timestamp(ctx.str_option("position"))
    record = _playing(ctx, store)
    entry = record.actual.now_playing
    duration = entry.duration_s if entry is not None else None
    if duration is not None and target_s >= duration:
        raise InvalidInputError(
            f"`{ui.format_duration(target_s)}` is past the end: this track is {ui.format_duration(duration)} long."
        )
    store.seek(ctx.guild_id, target_s * 1000)
    return Reply.message(f"⏩ <@{ctx.user_id}> moved {_title(record)} to {ui.format_duration(target_s)}.")


def volume(ctx: CommandContext, store: Store) -> Reply:
    level = ctx.int_option("level")
    if not VOLUME_MIN <= level <= VOLUME_MAX:
        raise InvalidInputError(f"Volume must be between {VOLUME_MIN} and {VOLUME_MAX} (you gave {level}).")
    record = _controllable(ctx, store)
    store.set_volume(ctx.guild_id, level)
    later = "" if record.actual.now_playing is not None else " It will apply when music plays."
    return Reply.message(f"🔊 <@{ctx.user_id}> set the volume to {level}%.{later}")


def _sound_reply(ctx: CommandContext, record: GuildRecord, what: str, filters: Filters) -> Reply:
    later = "" if record.actual.now_playing is not None else " It will apply when music plays."
    now = "" if filters.is_off else f" Now playing with: {filters.describe()}."
    return Reply.message(f"🎛 <@{ctx.user_id}> {what}.{now}{later}")


def filter_preset(ctx: CommandContext, store: Store) -> Reply:
    """/filter PRESET: one preset at a time; "off" also puts speed and pitch back to normal."""
    raw = ctx.str_option("preset")
    try:
        preset = FilterPreset(raw)
    except ValueError:
        allowed = ", ".join(LABELS[p] for p in FilterPreset)
        raise InvalidInputError(f"There is no filter called `{raw[:32]}`. Pick one of: {allowed}.") from None
    record = _controllable(ctx, store)
    if preset is FilterPreset.OFF:
        filters = Filters()
        store.set_filters(ctx.guild_id, filters)
        return _sound_reply(ctx, record, "turned the filters off (speed and pitch are normal again)", filters)
    filters = replace(record.desired.filters, preset=preset)
    store.set_filters(ctx.guild_id, filters)
    return _sound_reply(ctx, record, f"set the filter to **{LABELS[preset]}** ({DESCRIPTIONS[preset]})", filters)


def speed(ctx: CommandContext, store: Store) -> Reply:
    """/speed 0.5–2.0: tempo only; the pitch stays."""
    value = ctx.number_option("value")
    try:
        value = normal_speed(value)
    except ValueError:
        raise InvalidInputError(
            f"Speed must be between {SPEED_MIN:g} and {SPEED_MAX:g} (you gave {value:g})."
        ) from None
    record = _controllable(ctx, store)
    filters = replace(record.desired.filters, speed=value)
    store.set_filters(ctx.guild_id, filters)
    return _sound_reply(ctx, record, f"set the speed to {value:g}× (the pitch stays)", filters)


def pitch(ctx: CommandContext, store: Store) -> Reply:
    """/pitch −12…+12 semitones: the pitch only; the tempo stays."""
    semitones = ctx.int_option("semitones")
    if not PITCH_MIN <= semitones <= PITCH_MAX:
        raise InvalidInputError(f"Pitch must be between {PITCH_MIN} and +{PITCH_MAX} semitones (you gave {semitones}).")
    record = _controllable(ctx, store)
    filters = replace(record.desired.filters, pitch=semitones)
    store.set_filters(ctx.guild_id, filters)
    what = "put the pitch back to normal" if semitones == 0 else f"shifted the pitch by {semitones:+d} semitones"
    return _sound_reply(ctx, record, what, filters)


LOOP_TEXT = {
    LoopMode.OFF: "Looping is off.",
    LoopMode.TRACK: "Looping the current track.",
    LoopMode.QUEUE: "Looping the whole queue.",
}


def loop(ctx: CommandContext, store: Store) -> Reply:
    raw = ctx.str_option("mode")
    try:
        mode = LoopMode(raw)
    except ValueError:
        allowed = ", ".join(m.value for m in LoopMode)
        raise InvalidInputError(f"Loop mode must be one of {allowed}.") from None
    record = _controllable(ctx, store)
    store.set_loop(ctx.guild_id, mode)
    later = "" if record.actual.now_playing is not None else " It will apply when music plays."
    return Reply.message(f"🔁 {LOOP_TEXT[mode]}{later}")


def nowplaying(ctx: CommandContext, store: Store) -> Reply:
    record = store.get_guild(ctx.guild_id)
    if record.actual.now_playing is None:
        raise NothingPlayingError()
    return Reply.message(embeds=(ui.now_playing_embed(record, ctx.now),), components=ui.now_playing_buttons())


COMMANDS: tuple[Command, ...] = (
    Command("nowplaying", "Show the track that is playing, with controls.", nowplaying),
    Command("skip", "Skip the current track.", skip),
    Command("back", "Play the previous track again; the current one plays after it.", back),
    Command(
        "skipto",
        "Skip to a track in the queue; the ones before it are dropped (or moved to the end when looping).",
        skip_to,
        (Option("position", "Its number in /queue", OptionType.INTEGER, min_value=1, max_value=QUEUE_POSITION_MAX),),
    ),
    Command("pause", "Pause the music.", pause),
    Command("resume", "Resume paused music.", resume),
    Command("stop", "Stop the music and clear the queue.", stop),
    Command(
        "seek",
        "Jump to a time in the current track.",
        seek,
        (
            Option(
                "position", "Where to jump: mm:ss, h:mm:ss or seconds", OptionType.STRING, max_length=TIME_MAX_LENGTH
            ),
        ),
    ),
    Command(
        "volume",
        "Set the playback volume.",
        volume,
        (Option("level", "Volume in percent (0–150)", OptionType.INTEGER, min_value=VOLUME_MIN, max_value=VOLUME_MAX),),
    ),
    Command(
        "filter",
        "Play with a filter (bass boost, nightcore, 8D, karaoke, EQ…); off also resets speed and pitch.",
        filter_preset,
        (
            Option(
                "preset",
                "The filter",
                OptionType.STRING,
                choices=tuple(Choice(LABELS[preset], preset.value) for preset in FilterPreset),
            ),
        ),
    ),
    Command(
        "speed",
        "Play faster or slower; the pitch stays.",
        speed,
        (Option("value", "Speed (0.5–2.0; 1 is normal)", OptionType.NUMBER, min_value=SPEED_MIN, max_value=SPEED_MAX),),
    ),
    Command(
        "pitch",
        "Play higher or lower; the tempo stays.",
        pitch,
        (
            Option(
                "semitones",
                "Semitones up or down (−12 to +12; 0 is normal)",
                OptionType.INTEGER,
                min_value=PITCH_MIN,
                max_value=PITCH_MAX,
            ),
        ),
    ),
    Command(
        "loop",
        "Loop the current track, the whole queue, or nothing.",
        loop,
        (
            Option(
                "mode",
                "What to loop",
                OptionType.STRING,
                choices=(Choice("off", "off"), Choice("track", "track"), Choice("queue", "queue")),
            ),
        ),
    ),
)
