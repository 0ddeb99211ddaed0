"""GIVEN each Store adapter (SQLite, DynamoDB on moto, memory) WHEN saved playlists are written,
changed, marked and forgotten THEN they round-trip whole, within DynamoDB's item limit."""

from __future__ import annotations

from typing import Any

import pytest

from timmybot.errors import (
    InvalidInputError,
    SourceRestingError,
    SourceTimeoutError,
    TrackNotFoundError,
    TrackUnavailableError,
)
from timmybot.models import QueueEntry, Track
from timmybot.playlists import dead
from timmybot.playlists.book import CHUNK_SIZE, Owner, PlaylistBook
from timmybot.playlists.forget import forget_user
from timmybot.store import Store
from timmybot.store.keys import PLAYLIST_LOAD_SK, playlist_chunk_sk, playlist_load_pk
from timmybot.store.limits import ITEM_SIZE_LIMIT, item_size

USER = "111111111111111111"
OTHER = "222222222222222222"
GUILD = "123456789012345678"


def maximal_track(n: int) -> dict[str, Any]:
    """A track as long as a queue could hold: 256-character title, artist, song and album, 2 KB link."""
    source_id = f"{n:011d}"
    return {
        "source": "youtube",
        "source_id": source_id,
        "title": f"{n:04d}" + "T" * 252,
        "artist": "Ä" * 256,
        "song": "S" * 256,
        "album": "A" * 256,
        "url": f"https://www.youtube.com/watch?v={source_id}&list=" + "L" * 1990,
        "duration_s": 200 + n,
        "thumbnail": "https://i.ytimg.com/vi/" + "t" * 990,
        "isrc": "USRC17607839",
    }


def test_a_500_track_playlist_of_maximal_tracks_round_trips_in_chunks_below_the_item_limit(store: Store) -> None:
    book = PlaylistBook(store, max_playlists=25, max_tracks=500)
    owner = Owner("personal", USER)
    tracks = [maximal_track(n) for n in range(500)]
    header, left_out = book.create(owner, "Everything", tracks, created_by=USER)
    assert left_out == 0 and header.count == 500
    found = book.get(owner, "everything")
    assert book.tracks(owner, found) == tracks
    chunks = [store.get_record(owner.pk, playlist_chunk_sk(header.id, header.revision, n)) for n in range(10)]
    sizes = [item_size((owner.pk, playlist_chunk_sk(header.id, 1, n)), c or {}) for n, c in enumerate(chunks)]
    assert all(len((c or {})["tracks"]) == CHUNK_SIZE for c in chunks)
    assert max(sizes) < ITEM_SIZE_LIMIT * 0.6  # about 220 KB: room to spare per chunk
    assert sum(sizes) > ITEM_SIZE_LIMIT  # the whole would not fit one item


def test_a_change_moves_to_a_new_revision_and_drops_the_old_chunks(store: Store) -> None:
    book = PlaylistBook(store, max_playlists=25, max_tracks=500)
    owner = Owner("server", GUILD)
    first, _ = book.create(owner, "House", [maximal_track(n) for n in range(60)], created_by=USER)
    moved, added, left_out = book.append(owner, "house", [maximal_track(99)])
    assert (added, left_out, moved.revision, moved.count) == (1, 0, 2, 61)
    assert store.get_record(owner.pk, playlist_chunk_sk(first.id, 1, 0)) is None
    assert [t["source_id"] for t in book.tracks(owner, moved)][-1] == f"{99:011d}"
    with pytest.raises(InvalidInputError, match="already has a playlist"):
        book.create(owner, "HOUSE", [maximal_track(1)], created_by=USER)


def test_dead_marks_forget_me_and_creators(store: Store) -> None:
    book = PlaylistBook(store)
    personal, server = Owner("personal", USER), Owner("server", GUILD)
    mine, _ = book.create(personal, "Mine", [maximal_track(1), maximal_track(2)], created_by=USER)
    ours, _ = book.create(server, "Ours", [maximal_track(3)], created_by=USER)
    theirs, _ = book.create(server, "Theirs", [maximal_track(4)], created_by=OTHER)
    # a load of "Mine" by interaction 42 queued entry 42-001, which then failed to play
    store.update_record(playlist_load_pk("42"), PLAYLIST_LOAD_SK,
                        lambda _c: {"owner_pk": personal.pk, "playlist_id": mine.id, "name": "Mine",
                                    "owner_user": USER})  # fmt: skip
    failed = QueueEntry("42-001", Track.from_dict(maximal_track(2)), USER, 0.0)
    notice = dead.mark_failed(store, failed)
    assert notice is not None and f"<@{USER}>'s playlist **Mine**" in notice
    assert book.dead_keys(personal, mine) == {f"youtube:{2:011d}"}
    assert (
        dead.mark_failed(store, QueueEntry("77-000", Track.from_dict(maximal_track(2)), USER, 0.0)) is None
    )  # not a load
    assert forget_user(store, USER) == (1, 1)
    assert book.headers(personal) == []
    assert store.get_record(personal.pk, playlist_chunk_sk(mine.id, 1, 0)) is None
    assert book.dead_keys(personal, mine) == set()
    kept = {h.name: h.created_by for h in book.headers(server)}
    assert kept == {"Ours": "", "Theirs": OTHER}
    assert book.tracks(server, ours)[0]["source_id"] == f"{3:011d}" and theirs.count == 1


def test_only_failures_that_will_happen_again_mark_a_track_dead() -> None:
    assert dead.is_lasting(TrackUnavailableError()) and dead.is_lasting(TrackNotFoundError())
    assert not dead.is_lasting(SourceTimeoutError()) and not dead.is_lasting(SourceRestingError())
    assert not dead.is_lasting(TimeoutError())
