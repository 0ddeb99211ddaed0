"""The guild record and queue entries: plain data, stored by every Store adapter alike.

Everything here serialises to plain JSON types (``to_dict``/``from_dict``) so that the SQLite
adapter (JSON text) and the DynamoDB adapter (nested maps) store the same shape.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


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


@dataclass(frozen=True)
class QueueEntry:
    """One queued track. ``track`` is ``timmybot.sources.Track.to_dict()`` (title, url, duration_s, …)."""

    entry_id: str
    track: dict[str, Any]
    requester_id: str
    added_at: float
    start_ms: int = 0  # where playing starts: a track that "play now" interrupted resumes here
    #: The requester's preferences for this track (``timmybot.preferences``), stamped when queued:
    #: ping them when it starts, and the stream quality ("" = high). Stored only when set.
    notify: bool = False
    quality: str = ""

    @property
    def title(self) -> str:
        return str(self.track.get("title") or "Unknown title")

    @property
    def url(self) -> str:
        return str(self.track.get("url") or "")

    @property
    def duration_s(self) -> int | None:
        value = self.track.get("duration_s")
        return int(value) if value is not None else None

    @property
    def thumbnail(self) -> str | None:
        value = self.track.get("thumbnail")
        return str(value) if value else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("notify", "quality"):  # older readers never see fields they do not know
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueueEntry:
        return cls(
            entry_id=str(data["entry_id"]),
            track=dict(data.get("track") or {}),
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

    def position_at(self, now: float) -> int:
        """Current position in ms, derived from ``started_at`` while playing."""
        if self.now_playing is None:
            return 0
        if self.paused or self.started_at is None:
            return self.position_ms
        return max(0, int((now - self.started_at) * 1000))


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


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
