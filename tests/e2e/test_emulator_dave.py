"""DAVE in the emulator's voice server, against unmodified discord.py 2.7.1 (with davey) and
libdave listeners: the exchange, the modes, the refusals, and what a listener hears."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.audio import analyse
from tests.support.dave_checks import report_problems
from tests.support.emulator import ChannelType, DaveMode, DiscordEmulator, GuildHandle
from tests.support.emulator.dave import DaveOp
from tests.support.minimal_bot import MinimalBotProcess
from tests.support.warm_start import WarmStarter

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

StartBot = Callable[..., MinimalBotProcess]


def _join(bot: MinimalBotProcess, guild: GuildHandle, channel: int | None = None, **extra: Any) -> dict[str, Any]:
    bot.wait_event("ready")
    bot.command("join", guild=guild.id, channel=channel or guild.voice_channel_id, **extra)
    return bot.wait_event("joined")


def _play_to_the_end(bot: MinimalBotProcess, guild: GuildHandle, path: Path, **extra: Any) -> float:
    bot.command("play", guild=guild.id, path=path, **extra)
    started = float(bot.wait_event("playing")["t"])
    assert bot.wait_event("play_done", timeout=20)["error"] is None
    return started


def test_dave_v1_is_negotiated_and_the_listener_decrypts_what_the_bot_plays(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot, tone_440_1s: Path
) -> None:
    # GIVEN a listener in the channel and a discord.py bot joining it
    listener = emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot()
    joined = _join(bot, guild)

    # THEN DAVE v1 is in force, the group holds both, and both show the same privacy code
    assert joined["dave_ready"] and joined["dave"]["version"] == 1
    group = emulator.dave_group(guild.voice_channel_id)
    assert group["established"] and sorted(group["members"]) == sorted([listener, emulator.bot_user_id])
    kinds = [e.kind for e in emulator.voice_events(guild.id)]
    assert kinds.index("sent_mls_external_sender") > kinds.index("select_protocol")  # op 25 after op 4
    emulator.wait_for(lambda: emulator.privacy_codes(guild.id), message="the listener's privacy code")
    assert emulator.privacy_codes(guild.id)[-1].code == joined["dave"]["privacy_code"]

    # WHEN the bot plays a 1 s tone
    started = _play_to_the_end(bot, guild, tone_440_1s)

    # THEN the listener decrypted it, frame by frame (50 frames), and nothing went out in plain text
    heard = analyse(emulator.heard(guild.id, listener, since=started))
    assert heard.packet_count == pytest.approx(50, rel=0.1)
    assert heard.dominant_hz == pytest.approx(440, rel=0.02)
    assert emulator.plaintext_frames(guild.id) == 0
    assert emulator.listener_failures(guild.id) == []


@pytest.mark.not_audio_expected
def test_the_emulator_counts_ogg_header_packets_sent_as_audio_frames(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot, tone_440_1s: Path
) -> None:
    # GIVEN a listener, and a bot playing through unmodified discord.py's FFmpegOpusAudio
    emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot()
    joined = _join(bot, guild)
    # the bot can encrypt once it has the group; the listener decrypts once it has processed the
    # same transition (on a loaded machine, later): until then its frames are unread, not counted
    emulator.wait_for(lambda: [c for c in emulator.privacy_codes(guild.id) if c.code == joined["dave"]["privacy_code"]],
                      message="the listener in the bot's group")  # fmt: skip

    # WHEN it plays a tone twice: as it comes (the Ogg headers go out first), then without them
    _play_to_the_end(bot, guild, tone_440_1s, ogg_headers=True)
    raw = emulator.not_audio_frames(guild.id)
    _play_to_the_end(bot, guild, tone_440_1s)

    # THEN the first play's Ogg header packets were counted (OpusTags at least: the very first
    # frame of a play can be lost as the stream starts, as any one UDP packet can), and the second
    # play added none
    unread = emulator.unread_dave_frames(guild.id)
    assert raw and all(frame[:8] in (b"OpusHead", b"OpusTags") for frame in raw), (raw, unread)
    assert b"OpusTags" in [frame[:8] for frame in raw]
    assert emulator.not_audio_frames(guild.id) == raw


def test_a_client_without_dave_is_closed_with_4017_in_required_mode(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot
) -> None:
    # GIVEN a client build that does not offer DAVE (max_dave_protocol_version 0)
    emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot(EMU_NO_DAVE="1")
    bot.wait_event("ready")

    # WHEN it tries to join a voice channel
    bot.command("join", guild=guild.id, channel=guild.voice_channel_id, timeout=4)
    emulator.wait_for(lambda: emulator.voice_events(guild.id, "closed_by_server"), message="the voice close")
    bot.stop(timeout=0.5)  # its join waits out its 4 s timeout before it would take "quit"

    # THEN Discord's answer is 4017, before any session description
    identifies = emulator.voice_events(guild.id, "identify")
    assert identifies and all(e.data["max_dave_protocol_version"] == 0 for e in identifies)
    assert {e.data for e in emulator.voice_events(guild.id, "closed_by_server")} == {4017}
    assert emulator.voice_events(guild.id, "select_protocol") == []


@pytest.mark.parametrize(
    ("mode", "no_dave", "stage", "version"),
    [
        (DaveMode.OFF, False, False, 0),  # transport encryption only
        (DaveMode.ON, True, False, 0),  # offered, but this client has no DAVE: version 0, no close
        (DaveMode.ON, False, False, 1),
        (DaveMode.REQUIRED, False, True, 0),  # stage channels stay at version 0, as on Discord
    ],
)
def test_the_dave_version_follows_the_mode_the_client_and_the_channel(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot, tone_440_1s: Path,
    mode: DaveMode, no_dave: bool, stage: bool, version: int,
) -> None:  # fmt: skip
    emulator.set_dave_mode(guild.id, mode)
    channel = emulator.add_channel(guild.id, "Stage", ChannelType.GUILD_STAGE_VOICE) if stage else None
    listener = emulator.add_listener(guild.id, channel or guild.voice_channel_id)
    bot = start_bot(**({"EMU_NO_DAVE": "1"} if no_dave else {}))

    joined = _join(bot, guild, channel)
    started = _play_to_the_end(bot, guild, tone_440_1s)

    assert joined["dave"]["version"] == version
    heard = analyse(emulator.packets(guild.id, since=started))
    assert heard.dominant_hz == pytest.approx(440, rel=0.02)
    # Only DAVE frames are decrypted by the listener itself; version 0 is heard as it was sent.
    assert bool(emulator.heard(guild.id, listener, since=started)) == (version == 1)


@pytest.mark.plaintext_expected
def test_plain_opus_sent_before_the_group_is_ready_is_counted_and_never_heard(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot, tone_440: Path
) -> None:
    # GIVEN a group that becomes ready 1.5 s late, and an unmodified discord.py bot that does not wait
    emulator.hold_dave_commits(guild.voice_channel_id, 1.5)
    emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot()
    joined = _join(bot, guild, dave_timeout=0)
    assert not joined["dave_ready"]

    # WHEN it plays at once
    started = _play_to_the_end(bot, guild, tone_440)

    # THEN the frames it sent before the group was ready went out in plain text, counted here,
    # and the listener heard only the rest of the track
    plain = emulator.plaintext_frames(guild.id)
    assert 30 <= plain <= 100, plain
    heard = analyse(emulator.packets(guild.id, since=started))
    assert heard.packet_count == pytest.approx(150 - plain, abs=5)
    # AND the guard every test gets reports them (this test alone is marked plaintext_expected)
    problems = report_problems(emulator.report())
    assert problems == [f"{plain} Opus frames went out in plain text while DAVE was in force"], problems


def test_a_listener_whose_key_is_withheld_hears_nothing_so_the_tone_check_fails(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot, tone_440_1s: Path
) -> None:
    # GIVEN a listener kept from the bot's key (the negative control)
    listener = emulator.add_listener(guild.id, guild.voice_channel_id, withhold_key=True)
    bot = start_bot()
    _join(bot, guild)

    # WHEN the bot plays
    started = _play_to_the_end(bot, guild, tone_440_1s)

    # THEN the analysis hears nothing, and the check every voice test makes would fail on it
    heard = analyse(emulator.packets(guild.id, since=started))
    assert (heard.packet_count, heard.dominant_hz) == (0, 0.0)
    with pytest.raises(AssertionError):
        assert heard.dominant_hz == pytest.approx(440, rel=0.02)
    assert emulator.heard(guild.id, listener) == []
    assert emulator.unread_dave_frames(guild.id) >= 45  # of the 1 s tone's 50 frames


@pytest.mark.parametrize("op", [DaveOp.MLS_ANNOUNCE_COMMIT_TRANSITION, DaveOp.MLS_WELCOME], ids=["op29", "op30"])
def test_a_bad_commit_is_answered_with_op_31_and_the_bot_is_added_again(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot, tone_440_1s: Path, op: DaveOp
) -> None:
    # GIVEN a bot in an established group with a listener
    listener = emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot()
    _join(bot, guild)
    epoch = emulator.dave_group(guild.voice_channel_id)["epoch"]

    # WHEN the voice server sends it a corrupt op 29 (commit) or op 30 (welcome)
    assert emulator.inject_invalid_dave(guild.id, op)

    # THEN it flags it (op 31) for that transition, is removed and re-added with a fresh key package,
    # and audio flows again
    injected = emulator.dave_events(guild.id, "injected_invalid")
    assert [e.data["op"] for e in injected] == [int(op)]
    flags = emulator.wait_for(lambda: emulator.voice_events(guild.id, "dave_mls_invalid_commit_welcome"),
                              message="op 31")  # fmt: skip
    assert flags[0].data["transition_id"] == injected[0].data["transition_id"]
    flagged = flags[0].time
    emulator.wait_for(lambda: [e for e in emulator.dave_events(guild.id, "transition_executed") if e.time > flagged],
                      message="a new group's transition")  # fmt: skip
    group = emulator.dave_group(guild.voice_channel_id)
    assert group["established"] and len(group["members"]) == 2 and not group["pending"]
    assert len(emulator.voice_events(guild.id, "dave_mls_key_package")) >= 2

    state: dict[str, Any] = {}

    def same_code() -> bool:
        after = len(bot.events)
        bot.command("dave", guild=guild.id)
        state.update(bot.wait_event("dave", after=after))
        return state["privacy_code"] == emulator.privacy_codes(guild.id, listener)[-1].code

    emulator.wait_for(same_code, interval=0.1, message="the same privacy code on both sides")
    assert state["can_encrypt"] and epoch >= 1
    started = _play_to_the_end(bot, guild, tone_440_1s)
    assert analyse(emulator.packets(guild.id, since=started)).dominant_hz == pytest.approx(440, rel=0.02)


def test_voice_join_events_come_in_either_order_and_the_server_update_may_first_lack_an_endpoint(
    warm_starter: WarmStarter,
) -> None:
    # GIVEN emulators with seeds that fix one join's events in each of the four orders (a fresh
    # emulator's first draws decide it: 0 server-state, 1 state-server, 4 and 7 with a null endpoint first)
    orders: set[tuple[str, ...]] = set()
    for seed in (0, 1, 4, 7):
        with DiscordEmulator(seed=seed) as emulator:
            guild = emulator.add_guild("Orders")
            bot = MinimalBotProcess(emulator, starter=warm_starter).start()
            try:
                # WHEN a discord.py bot joins
                joined = _join(bot, guild, dave_timeout=0)
            finally:
                bot.stop()
            # THEN it connects whatever the order
            assert joined["dave"]["version"] == 1
            orders.update(emulator.voice_dispatches(guild.id))
    # AND every variant came up
    assert orders == {("server", "state"), ("state", "server"), ("server:null", "server", "state"),
                      ("state", "server:null", "server")}  # fmt: skip


def test_a_voice_session_closed_with_4006_cannot_be_resumed(emulator: DiscordEmulator, guild: GuildHandle,
                                                            start_bot: StartBot) -> None:  # fmt: skip
    # GIVEN a bot's voice session that the server closed with 4006
    emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot()
    _join(bot, guild)
    identify = emulator.voice_events(guild.id, "identify")[0].data
    assert emulator.close_voice(guild.id, 4006)
    bot.stop()

    # WHEN a client tries to RESUME it
    async def resume() -> int | None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"wss://{emulator.voice_endpoint}/?v=8", ssl=emulator.ssl_context()) as ws,
        ):
            payload = {"server_id": identify["server_id"], "session_id": identify["session_id"],
                       "token": identify["token"], "seq_ack": 0}  # fmt: skip
            await ws.send_str(json.dumps({"op": 7, "d": payload}))
            await ws.receive(timeout=5)
            return ws.close_code

    # THEN it is refused with 4006, as Discord does
    assert asyncio.run(resume()) == 4006


def test_listener_changes_make_new_epochs_and_a_sole_member_is_reset(
    emulator: DiscordEmulator, guild: GuildHandle, start_bot: StartBot
) -> None:
    # GIVEN the bot and one listener in a group
    first = emulator.add_listener(guild.id, guild.voice_channel_id)
    bot = start_bot()
    _join(bot, guild)
    channel = guild.voice_channel_id
    assert channel is not None
    epoch = emulator.dave_group(channel)["epoch"]

    # WHEN a second listener joins, then the first leaves, then the second leaves too
    second = emulator.add_listener(guild.id, channel, "second")
    emulator.wait_for(lambda: emulator.dave_group(channel)["epoch"] == epoch + 1, message="the Add's epoch")
    emulator.set_member_voice(guild.id, first, None)
    emulator.wait_for(lambda: emulator.dave_group(channel)["epoch"] == epoch + 2, message="the Remove's epoch")
    group = emulator.dave_group(channel)
    emulator.set_member_voice(guild.id, second, None)

    # THEN each change was one commit, and the bot left alone was reset (op 24 epoch 1, op 21 id 0)
    assert sorted(group["members"]) == sorted([emulator.bot_user_id, second])
    emulator.wait_for(lambda: emulator.dave_events(guild.id, "sole_member_reset"), message="a sole-member reset")
    time.sleep(0.2)
    assert not emulator.dave_group(channel)["established"]
    assert emulator.voice_events(guild.id, "sent_prepare_epoch")
    assert emulator.listener_failures(guild.id) == []


def test_a_replayed_commit_for_an_epoch_that_has_one_is_refused_and_the_epoch_rises_by_one(
    emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN two listeners' clients in a group, and a third joining: one commit takes the group up an epoch
    channel = guild.voice_channel_id
    assert channel is not None
    emulator.add_listener(guild.id, channel, "first")
    emulator.add_listener(guild.id, channel, "second")
    emulator.wait_for(lambda: emulator.dave_group(channel)["established"], message="the group")
    emulator.wait_for(lambda: not emulator.dave_group(channel)["pending"], message="both in the group")
    epoch = emulator.dave_group(channel)["epoch"]
    joined_at = time.monotonic()
    emulator.add_listener(guild.id, channel, "third")
    emulator.wait_for(lambda: emulator.dave_group(channel)["epoch"] == epoch + 1, message="the Add's epoch")
    refused_before = len(emulator.dave_events(guild.id, "commit_refused"))

    # WHEN that accepted commit is sent again (a stale commit, a second one for the same epoch)
    replayed_at = time.monotonic()
    assert emulator.replay_dave_commit(channel)

    # THEN the voice server refuses it, and the epoch rose by exactly one for the join
    # (a listener's own commit that lost the race for the join's epoch may be refused just before)
    def refused_since_the_replay() -> list[Any]:
        events = emulator.dave_events(guild.id, "commit_refused")[refused_before:]
        return [e for e in events if e.time > replayed_at]

    refused = emulator.wait_for(refused_since_the_replay, message="the replay refused")
    assert len(refused) == 1
    assert refused[0].data == f"epoch {epoch}, the group is at {epoch + 1}"
    time.sleep(0.3)
    assert emulator.dave_group(channel)["epoch"] == epoch + 1
    commits = [e for e in emulator.dave_events(guild.id, "mls_announce_commit_transition") if e.time > joined_at]
    assert len(commits) == 1, commits
    assert emulator.listener_failures(guild.id) == []
