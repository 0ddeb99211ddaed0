"""The guild record, queue entries and tracks: plain data, stored by every Store adapter alike.

Everything here serialises to plain JSON types (``to_dict``/``from_dict``) so that the SQLite
adapter (JSON text) and the DynamoDB adapter (nested maps) store the same shape. ``Track`` and the
source labels live in ``timmybot.models.track``; import them from here.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from timmybot.filters import PITCH_MAX, PITCH_MIN, FilterPreset, Filters, normal_speed
from timmybot.models.track import SOURCE_LABELS, Track, source_label


class LoopMode(enum.StrEnum):
    OFF = "off"
    TRACK = "track"
    QUEUE = "queue"


class LeaseState(enum.StrEnum):
    """Voice-task lease lifecycle (BRIEF §4.3)."""

    FREE = "free"
    LAUNCHING = "launching"  # set by a launcher; holder = task ARN / pid
    RUNNING = "running"  # claimed by the task itself, renewed by heartbeat
    RELEASED = "released"  # the task exited cleanly (maybe with a resume point)


REPLAY_SEP = "~"  # never in an interaction id or a job's entry id (digits and "-")
BACK_REPLAY = "-prev"  # how the id of an entry /back started ends


def root_id(entry_id: str) -> str:
    """The id of the entry a track was first queued as: the same for every replay of it (a "play
    now" or /back comeback, /back's own replay), so that loop queue keeps a track in the cycle once."""
    return entry_id.split(REPLAY_SEP, 1)[0]


def replay_id(of: str, interaction_id: str, suffix: str) -> str:
    """The id of an entry that plays entry ``of`` again: its root, then what made it (bounded length)."""
    return f"{root_id(of)}{REPLAY_SEP}{interaction_id}{suffix}"


def is_back_replay(entry_id: str) -> bool:
    """Started by /back: the next /back walks on from the entry it replayed."""
    return REPLAY_SEP in entry_id and entry_id.endswith(BACK_REPLAY)


#: Track fields every release reads with a default: a stored entry omits them when None.
OMITTED_WHEN_NONE = frozenset({"duration_s", "thumbnail", "artist", "isrc", "fallback_from"})


@dataclass(frozen=True)
class QueueEntry:
    """One queued track. Stored as ``to_dict()``: the track as ``Track.to_dict()`` gives it."""

    entry_id: str
    track: Track
    requester_id: str
    added_at: float
    start_ms: int = 0  # where playing starts: a track that "play now" interrupted resumes here
    #: The requester's preferences for this track (``timmybot.preferences``), stamped when queued:
    #: ping them when it starts, and the stream quality ("" = high). Stored only when set.
    notify: bool = False
    quality: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.track, Track):  # a stored dict goes through from_dict, never in here
            raise TypeError(f"QueueEntry.track must be a Track, not {type(self.track).__name__}")

    @property
    def title(self) -> str:
        return self.track.title or "Unknown title"

    @property
    def url(self) -> str:
        return self.track.url

    @property
    def duration_s(self) -> int | None:
        return self.track.duration_s

    @property
    def thumbnail(self) -> str | None:
        return self.track.thumbnail or None

    def to_dict(self) -> dict[str, Any]:
        # A queue holds hundreds of these: a track field without a value is left out, and so is a
        # start of 0 (every release reads a missing one as empty, the same as the None it stood for).
        track = {key: value for key, value in self.track.to_dict().items()
                 if value is not None or key not in OMITTED_WHEN_NONE}  # fmt: skip
        data: dict[str, Any] = {
            "entry_id": self.entry_id,
            "track": track,
            "requester_id": self.requester_id,
            "added_at": self.added_at,
        }
        if self.start_ms:
            data["start_ms"] = self.start_ms
        # Older readers never see fields they do not know: written only when set.
        if self.notify:
            data["notify"] = True
        if self.quality:
            data["quality"] = self.quality
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueueEntry:
        raw = data.get("track")
        return cls(
            entry_id=str(data["entry_id"]),
            track=Track.from_stored(raw if isinstance(raw, dict) else {}),
            requester_id=str(data.get("requester_id") or ""),
            added_at=float(data.get("added_at") or 0.0),
            start_ms=max(0, int(data.get("start_ms") or 0)),
            notify=data.get("notify") is True,
            quality=str(data.get("quality") or ""),
        )


@dataclass(frozen=True, slots=True)
class RemotePlaylist:
    """One of a user's playlists on YouTube or Spotify, as the /my-playlists menu lists it."""

    id: str
    name: str
    total: int | None


@dataclass(frozen=True)
class GuildSettings:
    dj_role_id: str | None = None
    twenty_four_seven: bool = False
    idle_timeout_s: int | None = None  # None: the operator default
    vote_skip: bool = True
    vote_skip_percent: int = 50  # with 3+ listeners a skip needs more than this share of them
    dj_only: bool = False  # only the DJ role and Manage Server control playback (no votes)
    dj_only_adding: bool = False  # ...and only they add tracks
    lyrics_in_card: bool = False  # the now-playing card follows the synced lyrics (previous, current, next line)


@dataclass(frozen=True)
class Desired:
    """What the control plane wants. Counters only ever grow; the task applies each new value once."""

    paused: bool = False
    volume: int = 100
    loop: LoopMode = LoopMode.OFF
    autoplay: bool = False
    skip_seq: int = 0
    stop_seq: int = 0
    seek_seq: int = 0
    seek_ms: int = 0
    #: /filter, /speed and /pitch (``timmybot.filters``): the sound the task plays every track with.
    filter: FilterPreset = FilterPreset.OFF
    speed: float = 1.0
    pitch: int = 0

    @property
    def filters(self) -> Filters:
        return Filters(self.filter, self.speed, self.pitch)


@dataclass(frozen=True)
class Actual:
    """What the voice task reports. Written only with the task's lease generation."""

    now_playing: QueueEntry | None = None
    started_at: float | None = None  # wall-clock time at which position 0 would have played
    position_ms: int = 0  # position when paused / last written
    paused: bool = False
    volume: int = 100
    applied_skip_seq: int = 0
    applied_stop_seq: int = 0
    applied_seek_seq: int = 0
    listener_ids: tuple[str, ...] = ()
    message_channel_id: str | None = None
    message_id: str | None = None  # the now-playing post
    updated_at: float = 0.0
    #: Plays noted in the guild history so far: the next one goes to ring slot ``played_seq % 50``
    #: (``keys.history_slot_sk``). A release that does not know it keeps it as an unknown field.
    played_seq: int = 0
    #: Seconds of the track played per second of wall time (``Filters.rate``: /speed, nightcore…).
    #: Positions are in the track's own time; ``started_at`` is when position 0 would have played
    #: at this rate.
    rate: float = 1.0

    def position_at(self, now: float) -> int:
        """Current position in ms (track time), derived from ``started_at`` while playing."""
        if self.now_playing is None:
            return 0
        if self.paused or self.started_at is None:
            return self.position_ms
        return max(0, int((now - self.started_at) * 1000 * self.rate))


@dataclass(frozen=True)
class Lease:
    state: LeaseState = LeaseState.FREE
    generation: int = 0
    holder: str | None = None
    expires_at: float = 0.0
    resume: dict[str, Any] | None = None  # {"entry_id": str, "position_ms": int} after SIGTERM
    #: Where the running task listens for wake hints ("udp://127.0.0.1:port" locally, an SQS queue
    #: URL on AWS); None: it only polls (a task of an older release, or no listener).
    wake: str | None = None
    #: When the last task gave up on its voice connection: the reaper does not relaunch for a while.
    voice_gave_up_at: float | None = None

    def is_live(self, now: float) -> bool:
        return self.state in (LeaseState.LAUNCHING, LeaseState.RUNNING) and self.expires_at > now


#: How many ids of the queue's head the totals carry: the first pages of /queue read only those.
QUEUE_HEAD = 50


def queue_digest(entry_ids: Iterable[str]) -> str:
    """A short fingerprint of which ids are queued, whatever their order (shuffles and moves keep it)."""
    return hashlib.blake2b("\n".join(sorted(entry_ids)).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class QueueTotals:
    """How long the queue is: kept in the guild record, in the same conditional write as the ids.

    ``digest`` (``queue_digest``) and ``count`` name the queue these totals describe: a record whose
    queue a release without totals changed (it keeps the field as it read it) no longer matches,
    and the next write of this release counts again from the entries.

    ``head`` is the first ``QUEUE_HEAD`` ids joined by newlines and ``version`` the record version
    they were written with: /queue reads them, and not the whole list of ids, while the record's
    version is still that one (no release without them wrote it since)."""

    count: int = 0
    duration_s: int = 0  # sum of the known durations
    unknown: int = 0  # entries whose duration is unknown (live streams, local files, missing items)
    digest: str = ""
    head: str = ""
    version: int = 0

    def describes(self, queue: tuple[str, ...]) -> bool:
        return self.count == len(queue) and self.digest == queue_digest(queue)

    def head_ids(self) -> tuple[str, ...]:
        return tuple(self.head.split("\n")) if self.head else ()

    def stamped(self, queue: tuple[str, ...], version: int) -> QueueTotals:
        """These totals with the head of ``queue`` and the version of the record they go into."""
        head = queue[:QUEUE_HEAD]
        joined = "\n".join(head) if not any("\n" in i for i in head) else ""  # ids never hold one
        return replace(self, head=joined, version=version)

    @classmethod
    def from_dict(cls, data: Any) -> QueueTotals | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                count=int(data.get("count", 0)),
                duration_s=int(data.get("duration_s", 0)),
                unknown=int(data.get("unknown", 0)),
                digest=str(data.get("digest") or ""),
                head=str(data.get("head") or ""),
                version=int(data.get("version", 0)),
            )
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, with the totals of the whole queue (``Store.page_queue``)."""

    entries: list[QueueEntry]
    total: int
    total_duration_s: int  # sum of known durations of every queued entry
    unknown_durations: int  # entries whose duration is unknown (live streams, local files)
    number: int = 1  # which page, from 1 (``Store.queue_page`` keeps it within the pages there are)
    now_playing: QueueEntry | None = None


@dataclass(frozen=True)
class GuildRecord:
    guild_id: str
    settings: GuildSettings = field(default_factory=GuildSettings)
    desired: Desired = field(default_factory=Desired)
    actual: Actual = field(default_factory=Actual)
    queue: tuple[str, ...] = ()  # entry ids, in play order (BRIEF §4.2)
    voice_channel_id: str | None = None
    text_channel_id: str | None = None
    lease: Lease = field(default_factory=Lease)
    last_active: float = 0.0
    skip_votes: tuple[str, ...] = ()  # members who voted to skip ``skip_votes_entry``
    skip_votes_entry: str | None = None
    version: int = 0  # optimistic-concurrency counter; bumped by every write
    #: The queue's length and duration (None in a record written before they were kept: the
    #: store counts them at its first write). Only the store sets them.
    queue_totals: QueueTotals | None = field(default=None, compare=False)
    #: Fields this release does not know, per part ("" for the top level), kept as they were read
    #: and written back: a voice task of this release, running for hours beside a newer control
    #: plane, must not erase that release's settings when it writes its playback state.
    unknown: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_playing(self) -> bool:
        return self.actual.now_playing is not None

    def is_active(self, now: float) -> bool:
        """Belongs in the sparse index of active guilds: a lease or queued music."""
        return self.lease.is_live(now) or bool(self.queue) or self.actual.now_playing is not None

    def evolve(self, **changes: Any) -> GuildRecord:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["unknown"]
        data["queue"] = list(self.queue)
        data["skip_votes"] = list(self.skip_votes)
        data["actual"]["listener_ids"] = list(self.actual.listener_ids)
        if self.actual.now_playing is not None:
            data["actual"]["now_playing"] = self.actual.now_playing.to_dict()
        for part, extra in self.unknown.items():
            target = data if part == "" else data.get(part)
            if isinstance(target, dict):
                for key, value in extra.items():
                    target.setdefault(key, value)  # a field this release knows always wins
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuildRecord:
        settings = data.get("settings") or {}
        desired = data.get("desired") or {}
        actual = dict(data.get("actual") or {})
        lease = data.get("lease") or {}
        now_playing = actual.pop("now_playing", None)
        unknown = _unknown_fields(data)
        return cls(
            guild_id=str(data["guild_id"]),
            settings=GuildSettings(
                dj_role_id=_opt_str(settings.get("dj_role_id")),
                twenty_four_seven=bool(settings.get("twenty_four_seven", False)),
                idle_timeout_s=_opt_int(settings.get("idle_timeout_s")),
                vote_skip=bool(settings.get("vote_skip", True)),
                vote_skip_percent=int(settings.get("vote_skip_percent", 50)),
                dj_only=bool(settings.get("dj_only", False)),
                dj_only_adding=bool(settings.get("dj_only_adding", False)),
                lyrics_in_card=bool(settings.get("lyrics_in_card", False)),
            ),
            desired=Desired(
                paused=bool(desired.get("paused", False)),
                volume=int(desired.get("volume", 100)),
                loop=LoopMode(desired.get("loop", LoopMode.OFF)),
                autoplay=bool(desired.get("autoplay", False)),
                skip_seq=int(desired.get("skip_seq", 0)),
                stop_seq=int(desired.get("stop_seq", 0)),
                seek_seq=int(desired.get("seek_seq", 0)),
                seek_ms=int(desired.get("seek_ms", 0)),
                filter=_preset(desired.get("filter")),
                speed=_speed(desired.get("speed")),
                pitch=_pitch(desired.get("pitch")),
            ),
            actual=Actual(
                now_playing=QueueEntry.from_dict(now_playing) if now_playing else None,
                started_at=_opt_float(actual.get("started_at")),
                position_ms=int(actual.get("position_ms", 0)),
                paused=bool(actual.get("paused", False)),
                volume=int(actual.get("volume", 100)),
                applied_skip_seq=int(actual.get("applied_skip_seq", 0)),
                applied_stop_seq=int(actual.get("applied_stop_seq", 0)),
                applied_seek_seq=int(actual.get("applied_seek_seq", 0)),
                listener_ids=tuple(str(x) for x in actual.get("listener_ids") or ()),
                message_channel_id=_opt_str(actual.get("message_channel_id")),
                message_id=_opt_str(actual.get("message_id")),
                updated_at=float(actual.get("updated_at", 0.0)),
                played_seq=max(0, int(actual.get("played_seq", 0))),
                rate=_rate(actual.get("rate")),
            ),
            queue=tuple(str(x) for x in data.get("queue") or ()),
            voice_channel_id=_opt_str(data.get("voice_channel_id")),
            text_channel_id=_opt_str(data.get("text_channel_id")),
            lease=Lease(
                state=LeaseState(lease.get("state", LeaseState.FREE)),
                generation=int(lease.get("generation", 0)),
                holder=_opt_str(lease.get("holder")),
                expires_at=float(lease.get("expires_at", 0.0)),
                resume=dict(lease["resume"]) if lease.get("resume") else None,
                wake=_opt_str(lease.get("wake")),
                voice_gave_up_at=_opt_float(lease.get("voice_gave_up_at")),
            ),
            last_active=float(data.get("last_active", 0.0)),
            skip_votes=tuple(str(x) for x in data.get("skip_votes") or ()),
            skip_votes_entry=_opt_str(data.get("skip_votes_entry")),
            version=int(data.get("version", 0)),
            queue_totals=QueueTotals.from_dict(data.get("queue_totals")),
            unknown=unknown,
        )


_PARTS: dict[str, type] = {"settings": GuildSettings, "desired": Desired, "actual": Actual, "lease": Lease}


def _unknown_fields(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The keys of ``data`` (and of its parts) that no field of this release reads."""
    known_top = {f.name for f in fields(GuildRecord)} - {"unknown"}
    unknown: dict[str, dict[str, Any]] = {}
    top = {key: value for key, value in data.items() if key not in known_top}
    if top:
        unknown[""] = top
    for part, model in _PARTS.items():
        raw = data.get(part)
        if isinstance(raw, dict):
            names = {f.name for f in fields(model)}
            extra = {key: value for key, value in raw.items() if key not in names}
            if extra:
                unknown[part] = extra
    return unknown


def _preset(value: Any) -> FilterPreset:
    """A preset this release knows, else off (a newer release's preset plays unfiltered here)."""
    try:
        return FilterPreset(value) if value is not None else FilterPreset.OFF
    except ValueError:
        return FilterPreset.OFF


def _speed(value: Any) -> float:
    try:
        return normal_speed(float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def _pitch(value: Any) -> int:
    return max(PITCH_MIN, min(PITCH_MAX, int(value))) if value is not None else 0


def _rate(value: Any) -> float:
    rate = float(value) if value is not None else 1.0
    return rate if rate > 0 else 1.0


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = [
    "BACK_REPLAY",
    "QUEUE_HEAD",
    "REPLAY_SEP",
    "SOURCE_LABELS",
    "Actual",
    "Desired",
    "GuildRecord",
    "GuildSettings",
    "Lease",
    "LeaseState",
    "LoopMode",
    "QueueEntry",
    "QueuePage",
    "QueueTotals",
    "RemotePlaylist",
    "Track",
    "is_back_replay",
    "queue_digest",
    "replay_id",
    "root_id",
    "source_label",
]
