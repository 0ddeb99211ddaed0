"""What today's main (b01fb58) stored and sent still loads and works after the store's typed
operations, the queue's totals and ``QueueEntry.track`` as a ``Track``.

``tests/support/compat/main-b01fb58.json`` was serialised by the code of b01fb58 itself (before any
of those changes): a guild record with a queue of five (one of unknown length), settings, the
desired and actual state, a history slot, the marker of a play job it had handled, a play job and
a personal job envelope, and the replies those jobs got from it against the Discord emulator.
Here the records are loaded as they are into the SQLite and the memory adapter, and the new code
reads them, shows /queue, skips, and runs the jobs: every outcome is the one b01fb58 gave.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clock import FakeClock
from tests.support.emulator import DiscordEmulator
from timmybot.accounts.vault.base import Platform
from timmybot.config import Settings
from timmybot.discord.rest import DiscordRest
from timmybot.launcher import build_launcher
from timmybot.library.personal import Library
from timmybot.models import OMITTED_WHEN_NONE, GuildRecord, LoopMode, QueueEntry, Track
from timmybot.sources.chain import SourceChain
from timmybot.store.base import GUILD_SK, Store
from timmybot.store.memory import MemoryStore
from timmybot.store.sqlite import SQLiteStore
from timmybot.worker.jobs import PlayJob
from timmybot.worker.personal_jobs import JobKind, PersonalJob, PersonalPorts, run_personal_job
from timmybot.worker.play import run_play_job

FIXTURE = Path(__file__).resolve().parents[1] / "support" / "compat" / "main-b01fb58.json"
QUEUED_SECONDS = 200 + 185 + 90 + 301  # the five entries: one of them has no duration
LATER_S = 300.0  # read a few minutes after b01fb58 wrote them (an async retry after a deploy)


def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def _load(store: Store, fixture: dict[str, Any]) -> None:
    """The items exactly as b01fb58 wrote them (the guild record in the active index, as it was)."""
    for row in fixture["records"]:
        key = (row["pk"], row["sk"])
        if row["sk"] == GUILD_SK:
            assert store._put_item(key, row["data"], expected_version=None, now=fixture["now"], active=True)
        else:
            store._put_items([(key, row["data"], row["expires_at"])])


@pytest.fixture(params=["sqlite", "memory"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    fixture = _fixture()
    clock = FakeClock(fixture["now"] + LATER_S)
    store: Store = (
        SQLiteStore(tmp_path / "state.db", clock=clock) if request.param == "sqlite" else MemoryStore(clock=clock)
    )
    _load(store, fixture)
    yield store
    if isinstance(store, SQLiteStore):
        store.close()


def _row(fixture: dict[str, Any], sk: str) -> dict[str, Any]:
    data: dict[str, Any] = next(row["data"] for row in fixture["records"] if row["sk"] == sk)
    return data


#: Fields the guild record gained after the fixture's release, with the value an old record reads as.
ADDED_FIELDS: dict[tuple[str, ...], object] = {
    ("queue_totals",): None,
    ("desired", "filter"): "off",
    ("desired", "speed"): 1.0,
    ("desired", "pitch"): 0,
    ("actual", "rate"): 1.0,
    ("settings", "lyrics_in_card"): False,
}


def _without_added(data: dict[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data`` without the added fields, each checked to hold its default (``queue_totals`` is new state)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        here = (*path, key)
        if here in ADDED_FIELDS:
            assert here == ("queue_totals",) or value == ADDED_FIELDS[here], (here, value)
            continue
        out[key] = _without_added(value, here) if isinstance(value, dict) and len(here) == 1 else value
    return out


def _without_empty(row: dict[str, Any]) -> dict[str, Any]:
    """A stored entry as this release writes it: no ``start_ms`` of 0, no optional track field at None."""
    out = {key: value for key, value in row.items() if not (key == "start_ms" and value == 0)}
    out["track"] = {key: value for key, value in row["track"].items()
                    if value is not None or key not in OMITTED_WHEN_NONE}  # fmt: skip
    return out


def _as_b01fb58_reads(data: dict[str, Any]) -> tuple[object, ...]:
    """What b01fb58's ``QueueEntry`` and strict ``Track.from_dict`` read from a stored entry: the four
    fields it indexes, and the rest through ``.get`` (a missing one reads as None, or 0 for the start)."""
    track = data["track"]
    strict = tuple(track[name] for name in ("source", "source_id", "title", "url"))
    optional = tuple(track.get(name) for name in ("duration_s", "thumbnail", "artist", "isrc", "fallback_from"))
    return (data["entry_id"], data.get("requester_id"), data.get("added_at"), int(data.get("start_ms") or 0),
            strict, optional)  # fmt: skip


def test_the_records_read_back_as_they_were_and_write_back_the_same_shape(old_store: Store) -> None:
    fixture = _fixture()
    gid = fixture["guild_id"]

    # WHEN today's code reads the guild record and its entries
    record = old_store.get_guild(gid)
    entries = old_store.get_entries(gid, record.queue)

    # THEN every part is there: queue, settings, desired and actual state, the track playing
    assert record.queue == tuple(f"old-{i:03d}" for i in range(5)) and record.queue_totals is None
    assert (record.settings.dj_role_id, record.settings.vote_skip_percent) == ("423456789012345678", 60)
    assert record.settings.twenty_four_seven
    assert (record.desired.volume, record.desired.loop, record.desired.autoplay) == (70, LoopMode.QUEUE, True)
    assert record.desired.skip_seq == record.actual.applied_skip_seq == 1
    playing = record.actual.now_playing
    assert playing is not None and playing.track == Track.from_dict(
        _row(fixture, "GUILD")["actual"]["now_playing"]["track"]
    )
    assert [e.duration_s for e in entries] == [200, None, 185, 90, 301]
    # AND an entry writes back the dict it was read from, without the fields that held no value,
    # and b01fb58 reads what it writes as it read its own; the record too, apart from the fields
    # later releases added (each at its default, which older readers ignore)
    for entry in entries:
        row = _row(fixture, f"E#{entry.entry_id}")
        assert entry.to_dict() == _without_empty(row)
        assert _as_b01fb58_reads(entry.to_dict()) == _as_b01fb58_reads(row)
    rewritten = GuildRecord.from_dict(_row(fixture, "GUILD")).to_dict()
    as_stored = _row(fixture, "GUILD")
    playing_row = as_stored["actual"]["now_playing"]
    as_stored = {**as_stored, "actual": {**as_stored["actual"], "now_playing": _without_empty(playing_row)}}
    assert _without_added(rewritten) == as_stored
    assert _as_b01fb58_reads(rewritten["actual"]["now_playing"]) == _as_b01fb58_reads(playing_row)
    # AND the history slot is the track that played
    assert [(e.entry_id, e.title) for e in old_store.guild_history(gid)] == [("old-np", "Old Song 9")]


def test_queue_totals_are_right_at_once_and_kept_from_the_first_write(old_store: Store) -> None:
    gid = _fixture()["guild_id"]

    # WHEN /queue reads the record b01fb58 wrote (no totals in it)
    record = old_store.get_guild(gid)
    page = old_store.page_queue(gid, offset=0, limit=10, record=record)

    # THEN the totals are those of its five entries
    assert (page.total, page.total_duration_s, page.unknown_durations) == (5, QUEUED_SECONDS, 1)
    assert [e.entry_id for e in page.entries] == list(record.queue)

    # WHEN a /skip is the first write of today's code
    skipped = old_store.skip(gid)

    # THEN it is one skip more, nothing else moved, and the totals are now kept in the record
    assert skipped.desired.skip_seq == 2 and skipped.queue == record.queue
    assert skipped.settings == record.settings and skipped.actual.now_playing == record.actual.now_playing
    totals = old_store.get_guild(gid).queue_totals
    assert totals is not None and (totals.count, totals.duration_s, totals.unknown) == (5, QUEUED_SECONDS, 1)
    assert old_store.remove_at(gid, 1).entry_id == "old-000"
    after = old_store.page_queue(gid, offset=0, limit=10)
    assert (after.total, after.total_duration_s, after.unknown_durations) == (4, QUEUED_SECONDS - 200, 1)


class _NoLinkedAccounts:
    """The accounts port of a bot where nobody linked a platform."""

    def access_token(self, user_id: str, platform: Platform) -> str | None:
        return None


def test_the_jobs_in_flight_run_or_are_refused_as_they_were(old_store: Store, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    fixture = _fixture()
    gid, uid = fixture["guild_id"], fixture["user_id"]
    with DiscordEmulator(application_id=int(fixture["play_job"]["application_id"])) as emulator:
        # GIVEN Discord as it was when b01fb58 ran them: the member is in the guild, not in voice
        monkeypatch.setenv("SSL_CERT_FILE", str(emulator.ca_file))
        guild = emulator.add_guild("Old Guild", guild_id=int(gid))
        emulator.add_member(guild.id, "alice", user_id=int(uid))
        settings = Settings(
            discord_application_id=fixture["play_job"]["application_id"],
            store_backend="sqlite",
            sqlite_path=str(tmp_path / "unused.db"),
            discord_api_base=emulator.api_base,
            discord_bot_token=emulator.bot_token,
            data_dir=str(tmp_path),
            launcher="local",
        )
        rest = DiscordRest.from_settings(settings)
        launcher = build_launcher(settings, old_store)
        sources = SourceChain.over_store(settings.source_settings(), old_store)
        queue_before = old_store.get_guild(gid).queue
        later = FakeClock(fixture["now"] + LATER_S)

        # WHEN the envelopes b01fb58 sent arrive at today's worker
        play = PlayJob.from_dict(fixture["play_job"])
        handled = PlayJob.from_dict(fixture["handled_play_job"])
        for job in (play, handled):
            run_play_job(
                job, store=old_store, rest=rest, launcher=launcher, sources=sources, settings=settings, clock=later
            )
        personal = PersonalJob.from_dict(fixture["personal_job"])
        ports = PersonalPorts(store=old_store, rest=rest, launcher=launcher, sources=sources, settings=settings,
                              library=Library(_NoLinkedAccounts(), settings), clock=later)  # fmt: skip
        run_personal_job(personal, ports)

        # THEN each is read whole, and answers what b01fb58 answered
        assert (play.placement, play.roles, play.permissions) == ("next", ("423456789012345678",), 2048)
        assert personal.kind is JobKind.REQUEUE and personal.track is not None
        assert Track.from_dict(personal.track).title == "Old Song 3"
        outcomes = {job.interaction_id: emulator.original_message(job.token) for job in (play, handled, personal)}
        assert {i: (m or {}).get("content") for i, m in outcomes.items()} == fixture["outcomes"]
        # AND the handled job was not run again, nor did a refused one queue anything
        assert old_store.get_guild(gid).queue == queue_before


def test_an_entry_from_before_tracks_named_their_source_still_reads() -> None:
    # An entry item whose track lacks fields b01fb58 always wrote (a release older still)
    entry = QueueEntry.from_dict({"entry_id": "x", "track": {"title": "Bare", "url": "https://youtu.be/x"},
                                  "requester_id": "1", "added_at": 1.0})  # fmt: skip

    assert (entry.title, entry.url, entry.duration_s, entry.track.identified) == (
        "Bare",
        "https://youtu.be/x",
        None,
        False,
    )
