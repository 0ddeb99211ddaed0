"""Every record kind in the state table, in one place: its key, who reads and writes it, and
whether /forget-me deletes it.

This module is the table's map. Nothing else spells a key prefix (a quality test greps for them):
modules build keys with the functions below. ``RECORD_KINDS`` declares, per kind, which
processes read or write it; the voice task's IAM policy (``infra/template.yaml``, its
``dynamodb:LeadingKeys`` condition) is checked against it, and /forget-me deletes exactly the
kinds marked ``forget_me``. docs/ARCHITECTURE.md's key table is generated from ``RECORD_KINDS``
(a test keeps it in step). A new record kind is added here first.

Keys are never renamed: records written by older releases (and voice tasks still running one)
must keep working, so a change of layout needs a reader for the old one.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass


class Role(enum.Enum):
    """The processes that touch the table, each with its own IAM role."""

    API = "api"  # the interactions endpoint and the OAuth callback
    WORKER = "worker"  # deferred jobs: /play resolves, personal commands
    VOICE = "voice task"  # one per guild, on ECS (or locally)
    REAPER = "reaper"  # the scheduled sweep of idle or orphaned guilds


API, WORKER, VOICE, REAPER = Role.API, Role.WORKER, Role.VOICE, Role.REAPER

# ------------------------------------------------------------------------------- the prefixes
GUILD_PREFIX = "G#"
GUILD_LAST_PREFIX = "GL#"
DEDUPE_PREFIX = "I#"
TRACK_PREFIX = "T#"
USER_PREFIX = "U#"
PENDING_PREFIX = "O#"
BREAKER_PREFIX = "S#breaker#"
IDENTIFY_PK = "B#identify"
RATE_PREFIX = "R#"
SUGGEST_PREFIX = "Q#"
LYRICS_PREFIX = "L#"
ENTRY_PREFIX = "E#"  # a sort-key prefix, under a guild
HISTORY_SLOT_PREFIX = "H#"  # a sort-key prefix, under a guild: one slot of the history ring
PLAYLIST_USER_PREFIX = "P#u#"  # a user's saved (personal) playlists
PLAYLIST_GUILD_PREFIX = "P#g#"  # a guild's saved (server) playlists
PLAYLIST_LOAD_PREFIX = "P#load#"  # which saved playlist a load queued (the voice task reads it)
PLAYLIST_DEAD_PREFIX = "P#dead#"  # one saved playlist's tracks that failed to play (the voice task writes)
PLAYLIST_CHUNK_PREFIX = "C#"  # a sort-key prefix, under a playlist owner: one chunk of one playlist's tracks

# ------------------------------------------------------------------------------- the sort keys
GUILD_SK = "GUILD"
GUILD_HISTORY_SK = "HISTORY"  # the legacy history: one item holding the last 50 plays
GUILD_LAST_SK = "LAST"
DEDUPE_SK = "DEDUPE"
TRACK_SK = "TRACK"
MIRROR_SK = "MIRROR"
PREFS_SK = "PREFS"
HISTORY_SK = "HISTORY"
PLAYLISTS_SK = "PLAYLISTS"
HISTORY_VIEW_SK = "HISTORY_VIEW"
SEARCH_MENU_SK = "SEARCH"
USER_GUILDS_SK = "GUILDS"
GOOGLE_DEVICE_SK = "GOOGLE"
SPOTIFY_STATE_SK = "SPOTIFY"
SPOTIFY_POINTER_SK = "PENDING"
BREAKER_SK = "breaker"
IDENTIFY_SK = "BUDGET"
RATE_SK = "RATE"
SUGGEST_SK = "SUGGEST"
LYRICS_SK = "LYRICS"
PLAYLIST_INDEX_SK = "INDEX"
PLAYLIST_LOAD_SK = "LOAD"
PLAYLIST_DEAD_SK = "DEAD"


# ------------------------------------------------------------------------------- key builders
def guild_pk(guild_id: str) -> str:
    """The partition of a guild's record, its queue entries and its history."""
    return f"{GUILD_PREFIX}{guild_id}"


def guild_id_of(pk: str) -> str | None:
    """The guild id in a guild partition key, or None for any other key."""
    return pk[len(GUILD_PREFIX) :] if pk.startswith(GUILD_PREFIX) else None


def entry_sk(entry_id: str) -> str:
    return f"{ENTRY_PREFIX}{entry_id}"


#: The guild history's ring: play number ``n`` (the task's ``Actual.played_seq``) goes to slot ``n % 50``.
HISTORY_SLOTS = 50


def history_slot_sk(slot: int) -> str:
    """The sort key of one slot of a guild's history ring (``H#00`` … ``H#49``)."""
    if not 0 <= slot < HISTORY_SLOTS:
        raise ValueError(f"history slot {slot} is outside the ring of {HISTORY_SLOTS}")
    return f"{HISTORY_SLOT_PREFIX}{slot:02d}"


def history_slot_sks() -> list[str]:
    """Every slot's sort key, slot 0 first."""
    return [history_slot_sk(slot) for slot in range(HISTORY_SLOTS)]


def guild_last_pk(guild_id: str) -> str:
    return f"{GUILD_LAST_PREFIX}{guild_id}"


def dedupe_pk(interaction_id: str) -> str:
    return f"{DEDUPE_PREFIX}{interaction_id}"


def track_pk(source: str, source_id: str) -> str:
    """The track cache's key; a metadata-only track's mirror is stored under the same one."""
    return f"{TRACK_PREFIX}{source}#{source_id}"


def user_pk(user_id: str) -> str:
    """The partition of every per-user record (history, menus, the servers queued in...)."""
    return f"{USER_PREFIX}{user_id}"


def device_pk(user_id: str) -> str:
    return f"{PENDING_PREFIX}device#{user_id}"


def spotify_pointer_pk(user_id: str) -> str:
    return f"{PENDING_PREFIX}spotify#{user_id}"


def state_pk(state: str) -> str:
    """An OAuth state's record key: a hash, so the store never holds a usable state."""
    return f"{PENDING_PREFIX}state#{hashlib.sha256(state.encode()).hexdigest()}"


def breaker_pk(source: str) -> str:
    return f"{BREAKER_PREFIX}{source}"


def rate_pk(bucket: str, scope: str, subject: str) -> str:
    return f"{RATE_PREFIX}{bucket}#{scope}#{subject}"


def suggest_pk(source: str, prefix: str) -> str:
    """A typed prefix's cached suggestions: a hash, so the table holds no partial query in its keys."""
    digest = hashlib.sha256(f"{source}\x00{prefix}".encode()).hexdigest()
    return f"{SUGGEST_PREFIX}{digest}"


def lyrics_pk(digest: str) -> str:
    """A lyrics look-up's cached answer (``timmybot.lyrics.service.lookup_digest``: a hash of the track
    or of the words asked, so the table holds no typed text in its keys)."""
    if len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("a lyrics cache key is 32 hex characters")
    return f"{LYRICS_PREFIX}{digest}"


def playlist_owner_pk(scope: str, owner_id: str) -> str:
    """The partition of one owner's saved playlists: a user's (``personal``) or a guild's (``server``)."""
    if scope == "personal":
        return f"{PLAYLIST_USER_PREFIX}{owner_id}"
    if scope == "server":
        return f"{PLAYLIST_GUILD_PREFIX}{owner_id}"
    raise ValueError(f"no playlist scope {scope!r}")


def playlist_chunk_sk(playlist_id: str, revision: int, chunk: int) -> str:
    """One chunk of a saved playlist's tracks (a revision per save, so a reader never sees half of one)."""
    return f"{PLAYLIST_CHUNK_PREFIX}{playlist_id}#{revision}#{chunk:03d}"


def playlist_load_pk(interaction_id: str) -> str:
    return f"{PLAYLIST_LOAD_PREFIX}{interaction_id}"


def playlist_dead_pk(owner_pk: str, playlist_id: str) -> str:
    """The dead marks of one playlist (``owner_pk`` from ``playlist_owner_pk``), apart from the
    playlists themselves so the voice task may write them and nothing else."""
    owner = owner_pk.removeprefix("P#")
    return f"{PLAYLIST_DEAD_PREFIX}{owner}#{playlist_id}"


def is_core_key(pk: str) -> bool:
    """Guild and dedupe partitions belong to the Store's own model (versioned, listed, leased):
    the generic record calls may not touch them."""
    return pk.startswith((GUILD_PREFIX, DEDUPE_PREFIX))


# ------------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class RecordKind:
    """One kind of item: ``pk`` and ``sk`` as templates (``{…}`` marks a variable part)."""

    name: str
    pk: str
    sk: str
    reads: frozenset[Role]
    writes: frozenset[Role]
    lifetime: str
    forget_me: str = ""  # the label /forget-me reports when it deletes this kind ("" = not per user)

    @property
    def pk_prefix(self) -> str:
        """The fixed start of the partition key (what IAM's LeadingKeys condition matches)."""
        return self.pk.split("{", 1)[0]

    @property
    def roles(self) -> frozenset[Role]:
        return self.reads | self.writes

    def example_pk(self) -> str:
        """A realistic partition key of this kind (snowflakes and hashes where the template has them)."""
        out = self.pk
        for name, value in _EXAMPLES.items():
            out = out.replace("{" + name + "}", value)
        return out


_EXAMPLES = {
    "guild": "1234567890123456789",
    "user": "423456789012345678",
    "interaction": "1334567890123456789",
    "source": "youtube",
    "id": "dQw4w9WgXcQ",
    "sha256(state)": "ab" * 32,
    "sha256(prefix)": "cd" * 32,
    "sha256(lookup)": "ef" * 16,
    "bucket": "play",
    "scope": "user",
    "subject": "423456789012345678",
    "playlist": "0123456789ab",
    "owner": "u#423456789012345678",
}


def _kind(
    name: str, key: tuple[str, str], roles: tuple[set[Role], set[Role]], kept: str, forget_me: str = ""
) -> RecordKind:
    pk, sk = key
    reads, writes = roles
    return RecordKind(name, pk, sk, frozenset(reads | writes), frozenset(writes), kept, forget_me)


ALL = {API, WORKER, VOICE, REAPER}

RECORD_KINDS: tuple[RecordKind, ...] = (
    _kind("guild record", ("G#{guild}", GUILD_SK), (ALL, ALL),
          "versioned; in the active index while a voice task should run"),
    _kind("queue entry", ("G#{guild}", "E#{entry}"), ({API, WORKER, VOICE}, {API, WORKER, VOICE}),
          "30 days unless listed"),
    _kind("guild history slot", ("G#{guild}", "H#{slot}"), ({API}, {VOICE, API}),
          "a ring of 50 slots (00-49), one play each, slot = play number mod 50; "
          "/forget-me takes a requester's name off"),
    _kind("guild history (legacy)", ("G#{guild}", GUILD_HISTORY_SK), ({API}, {VOICE, API}),
          "one item of the last 50 plays, written by releases before the ring; still read and merged, "
          "/forget-me takes a requester's name off"),
    _kind("guild's last personal list", ("GL#{guild}", GUILD_LAST_SK), ({WORKER}, {WORKER}),
          "15 minutes"),
    _kind("interaction dedupe", ("I#{interaction}", DEDUPE_SK), ({API, WORKER}, {API, WORKER}),
          "the dedupe TTL"),
    _kind("track cache", ("T#{source}#{id}", TRACK_SK), ({WORKER, VOICE}, {WORKER, VOICE}),
          "7 days; a link or search is also kept under `T#link#`/`T#search#` and a digest"),
    _kind("Spotify mirror", ("T#{source}#{id}", MIRROR_SK), ({WORKER, VOICE}, {WORKER, VOICE}),
          "7 days"),
    _kind("user preferences", ("U#{user}", PREFS_SK), ({API, WORKER}, {API, WORKER}),
          "30 days after the user was last active (each use refreshes it, at most once a day)",
          forget_me="preferences"),
    _kind("play history", ("U#{user}", HISTORY_SK), ({API, WORKER}, {WORKER}),
          "until /forget-me", forget_me="play history"),
    _kind("playlist menu", ("U#{user}", PLAYLISTS_SK), ({API, WORKER}, {WORKER}),
          "15 minutes", forget_me="playlist menu"),
    _kind("history list", ("U#{user}", HISTORY_VIEW_SK), ({API, WORKER}, {WORKER}),
          "15 minutes", forget_me="history list"),
    _kind("search menu", ("U#{user}", SEARCH_MENU_SK), ({API, WORKER}, {WORKER}),
          "15 minutes (the interaction token)", forget_me="search results"),
    _kind("servers a user queued in", ("U#{user}", USER_GUILDS_SK), ({API, WORKER}, {WORKER}),
          "until /forget-me", forget_me="servers you queued music in"),
    _kind("Google device code", ("O#device#{user}", GOOGLE_DEVICE_SK), ({API}, {API}),
          "until the code expires (at most 15 minutes), sealed"),
    _kind("Spotify state", ("O#state#{sha256(state)}", SPOTIFY_STATE_SK), ({API}, {API}),
          "15 minutes, single use"),
    _kind("Spotify latest state", ("O#spotify#{user}", SPOTIFY_POINTER_SK), ({API}, {API}),
          "15 minutes"),
    _kind("source breaker", ("S#breaker#{source}", BREAKER_SK), ({API, WORKER, VOICE}, {WORKER, VOICE}),
          "the breaker's window"),
    _kind("identify budget", ("B#identify", IDENTIFY_SK), ({WORKER, VOICE, REAPER}, {VOICE}),
          "a rolling day"),
    _kind("suggestion cache", ("Q#{sha256(prefix)}", SUGGEST_SK), ({API}, {API}),
          "the suggestion cache's TTL (5 minutes)"),
    _kind("lyrics cache", ("L#{sha256(lookup)}", LYRICS_SK), ({API, WORKER, VOICE}, {WORKER, VOICE}),
          "the lyrics cache's TTL (7 days; a miss 1 day); the api reads it for the page buttons"),
    _kind("saved playlists (personal)", ("P#u#{user}", PLAYLIST_INDEX_SK), ({API, WORKER}, {API, WORKER}),
          "until deleted or /forget-me: the headers (name, count, revision) of a user's playlists"),
    _kind("saved playlist tracks (personal)", ("P#u#{user}", "C#{playlist}#{rev}#{n}"),
          ({API, WORKER}, {API, WORKER}), "until deleted or /forget-me: 50 tracks per chunk"),
    _kind("saved playlists (server)", ("P#g#{guild}", PLAYLIST_INDEX_SK), ({API, WORKER}, {API, WORKER}),
          "until deleted: the headers of a server's playlists; /forget-me takes a creator's id off"),
    _kind("saved playlist tracks (server)", ("P#g#{guild}", "C#{playlist}#{rev}#{n}"),
          ({API, WORKER}, {API, WORKER}), "until deleted: 50 tracks per chunk"),
    _kind("saved playlist load", ("P#load#{interaction}", PLAYLIST_LOAD_SK), ({VOICE}, {WORKER}),
          "7 days: which playlist a load queued, so a failed track is marked dead"),
    _kind("saved playlist dead marks", ("P#dead#{owner}#{playlist}", PLAYLIST_DEAD_SK),
          ({API, WORKER, VOICE}, {API, WORKER, VOICE}), "until the playlist is deleted or saved again"),
    _kind("rate window", ("R#{bucket}#{scope}#{subject}", RATE_SK), ({API}, {API}),
          "the rate's window"),
)  # fmt: skip


def kinds_for(role: Role) -> tuple[RecordKind, ...]:
    return tuple(k for k in RECORD_KINDS if role in k.roles)


def forget_me_kinds() -> tuple[RecordKind, ...]:
    """The per-user record kinds /forget-me deletes, each under ``user_pk(user)``."""
    return tuple(k for k in RECORD_KINDS if k.forget_me)


def leading_key_patterns(role: Role) -> list[str]:
    """The ``dynamodb:LeadingKeys`` patterns (StringLike) that admit exactly ``role``'s kinds."""
    patterns: list[str] = []
    for kind in kinds_for(role):
        pattern = kind.pk_prefix + "*" if "{" in kind.pk else kind.pk
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns


def kind_of(pk: str, sk: str) -> RecordKind | None:
    """The registered kind of a key, or None when no kind matches (a key the registry lacks)."""
    for kind in RECORD_KINDS:
        pk_ok = pk.startswith(kind.pk_prefix) if "{" in kind.pk else pk == kind.pk
        if not pk_ok:
            continue
        if kind.sk == sk or ("{" in kind.sk and sk.startswith(kind.sk.split("{", 1)[0])):
            return kind
    return None


def markdown_table() -> str:
    """The key layout as docs/ARCHITECTURE.md shows it."""
    names = {API: "api", WORKER: "worker", VOICE: "voice", REAPER: "reaper"}

    def who(roles: frozenset[Role]) -> str:
        return ", ".join(names[r] for r in Role if r in roles)

    rows = [
        "| record | pk | sk | read by | written by | kept | /forget-me |",
        "|---|---|---|---|---|---|---|",
    ]
    rows.extend(
        f"| {k.name} | `{k.pk}` | `{k.sk}` | {who(k.reads)} | {who(k.writes)} | {k.lifetime} | "
        f"{'deletes' if k.forget_me else ''} |"
        for k in RECORD_KINDS
    )
    return "\n".join(rows) + "\n"
