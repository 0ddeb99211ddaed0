"""The YouTube Data API client's walks are bounded (issue 15): page cap, item cap with skipped
videos counted, no page token twice, the queue's room asked before each further page.

Against the loopback Data API fake; requests are counted at the fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_youtube_api import FakeYouTubeApi, video, video_id
from timmybot.library.paging import ListWalk, StopReason
from timmybot.library.youtube_data import YouTubeDataClient

TOKEN = "yt-user-token-abcdefghijklmnop"
PLAYLIST = "PLbig0000000000001"


@pytest.fixture
def youtube() -> Iterator[FakeYouTubeApi]:
    with FakeYouTubeApi(page_size=50) as fake:
        yield fake


def _client(fake: FakeYouTubeApi) -> YouTubeDataClient:
    return YouTubeDataClient(TOKEN, api_url=fake.api_url, timeout_s=5.0)


def _calls(fake: FakeYouTubeApi, path: str) -> int:
    return sum(1 for called, _ in fake.requests if called == path)


def test_a_10000_item_playlist_costs_at_most_the_page_cap_in_api_calls(youtube: FakeYouTubeApi) -> None:
    # GIVEN a playlist of 10,000 entries of which only the first is still a video (the rest deleted)
    ids = [video_id(n) for n in range(10_000)]
    youtube.add_videos(video(ids[0], "Only one", "Channel", 200))
    youtube.add_user(TOKEN, playlists=[(PLAYLIST, "Big", ids)])
    walk = ListWalk(item_cap=100, page_cap=10)
    # WHEN its pages are walked
    tracks = [t for batch in _client(youtube).playlist_pages(PLAYLIST, 100, walk) for t in batch]
    # THEN the deleted entries counted toward the cap: two pages, not a hundred
    assert [t.title for t in tracks] == ["Only one"]
    assert _calls(youtube, "playlistItems") == 2
    assert _calls(youtube, "videos") == 2
    assert walk.left_out() == (
        "Added 1 of 10,000: I add at most 100 from one list; 99 can't be played here "
        "(episodes, local files or unavailable)."
    )


def test_the_page_cap_bounds_a_server_that_sends_tiny_pages(youtube: FakeYouTubeApi) -> None:
    youtube.page_size = 2
    ids = youtube.add_videos(*(video(video_id(n), f"V{n}", "C", 100) for n in range(40)))
    youtube.add_user(TOKEN, liked=ids)
    walk = ListWalk(item_cap=50, page_cap=4)
    assert len(_client(youtube).liked(50, walk)) == 8
    assert _calls(youtube, "videos") == 4
    assert walk.stopped is StopReason.PAGE_CAP


def test_a_page_token_that_names_its_own_page_ends_the_walk(youtube: FakeYouTubeApi) -> None:
    # GIVEN a server whose every page names itself as the next
    youtube.page_size = 2
    youtube.loop_token = True
    ids = youtube.add_videos(*(video(video_id(n), f"V{n}", "C", 100) for n in range(10)))
    youtube.add_user(TOKEN, liked=ids, playlists=[(PLAYLIST, "Ten", ids)])
    client = _client(youtube)
    # WHEN likes, a playlist and the playlists list are walked THEN each page token is used once
    walk = ListWalk(item_cap=50)
    assert len(client.liked(50, walk)) == 4  # the first page, then the page its token names, once
    assert walk.stopped is StopReason.LOOP
    assert _calls(youtube, "videos") == 2
    assert len([t for batch in client.playlist_pages(PLAYLIST, 50) for t in batch]) == 4
    assert _calls(youtube, "playlistItems") == 2
    assert len(client.playlists(50)) == 2
    assert _calls(youtube, "playlists") == 2


def test_a_playlist_walk_asks_the_queue_for_room_before_each_further_page(youtube: FakeYouTubeApi) -> None:
    # GIVEN a queue that is full once the first page is queued
    youtube.page_size = 2
    ids = youtube.add_videos(*(video(video_id(n), f"V{n}", "C", 100) for n in range(10)))
    youtube.add_user(TOKEN, playlists=[(PLAYLIST, "Ten", ids)])
    queued: list[str] = []
    walk = ListWalk.for_queue(playlist_cap=100, free=5, room=lambda: 2 - len(queued))
    # WHEN the pages are walked and queued one by one
    for batch in _client(youtube).playlist_pages(PLAYLIST, 100, walk):
        queued.extend(t.source_id for t in batch)
    # THEN no page is fetched once the queue is full, and the reply says so
    assert len(queued) == 2
    assert _calls(youtube, "playlistItems") == 1
    assert walk.left_out() == "Added 2 of 10: the queue is full."
