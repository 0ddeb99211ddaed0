"""The LRCLIB adapter and the look-up rules against a loopback LRCLIB (its field names, its 404,
its ±2 s signature match), through the network guard; and the store cache of hits and misses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clock import FakeClock
from tests.support.fake_lrclib import SIGNAL_LRC, FakeLrclib, record
from timmybot import netguard
from timmybot.lyrics import pages, service
from timmybot.lyrics.lrclib import USER_AGENT, LrclibClient
from timmybot.lyrics.models import LyricsQuery, LyricsUnavailableError
from timmybot.lyrics.names import lyrics_query
from timmybot.models import Track
from timmybot.store import Store

SIGNAL = record(1, "Signal Song", "Test Signals", "Loopback Sessions", 180, plain="First line\nSecond line",
                synced=SIGNAL_LRC)  # fmt: skip
#: The song's record is 180 s; its music video runs 197 s (a 17 s intro), so the signature misses.
INTRO_VIDEO = Track("youtube", "sIgNaLvId01", "Test Signals - Signal Song (Official Music Video)",
                    "https://www.youtube.com/watch?v=sIgNaLvId01", 197, None, "TestSignalsVEVO")  # fmt: skip
TOPIC_UPLOAD = Track("youtube", "sIgNaLtOp01", "Signal Song", "https://www.youtube.com/watch?v=sIgNaLtOp01", 181,
                     None, "Test Signals - Topic")  # fmt: skip
DRONE = record(2, "Drone In A", "Test Signals", "Loopback Sessions", 95, instrumental=True)
LONG_WORDS = "\n\n".join("\n".join(f"Verse {v} line {n} of a song that goes on and on" for n in range(12))
                         for v in range(30))  # fmt: skip
LONG = record(3, "Endless Song", "Test Signals", "Loopback Sessions", 600, plain=LONG_WORDS)


@pytest.fixture
def lrclib() -> Iterator[FakeLrclib]:
    with FakeLrclib(records=[SIGNAL, DRONE, LONG]) as fake:
        yield fake


def client(fake: FakeLrclib) -> LrclibClient:
    return LrclibClient(fake.url, timeout_s=5.0)


def test_the_current_track_is_found_by_signature_with_a_user_agent_naming_the_project(lrclib: FakeLrclib) -> None:
    # GIVEN a Topic upload whose length is within LRCLIB's 2 s of the record
    lyrics, how, in_time = service.find_lyrics(client(lrclib), lyrics_query(TOPIC_UPLOAD))
    # THEN one call by signature finds it, with LRCLIB's parameter names and our User-Agent
    assert lyrics is not None and lyrics.track_name == "Signal Song" and lyrics.synced == SIGNAL_LRC
    assert (how, in_time) == ("signature", True)
    path, params, agent = lrclib.requests[0]
    assert path == "/api/get"
    assert params == {"track_name": "Signal Song", "artist_name": "Test Signals", "duration": "181"}
    assert agent == USER_AGENT and "TimmyBot" in agent and "https://" in agent
    assert len(lrclib.requests) == 1


def test_a_video_with_an_intro_misses_the_signature_and_is_found_by_search(lrclib: FakeLrclib) -> None:
    lyrics, how, in_time = service.find_lyrics(client(lrclib), lyrics_query(INTRO_VIDEO), slack_s=30)
    assert lyrics is not None and lyrics.track_name == "Signal Song"
    assert lrclib.paths() == ["/api/get", "/api/search"]
    # 17 s apart: the words are right, the timing is not, so the card will not follow its lines
    assert (how, in_time) == ("search", False)


def test_a_duration_outside_the_slack_prefers_the_record_that_fits(lrclib: FakeLrclib) -> None:
    # GIVEN two records of one song: the radio edit (180 s) and the extended mix (240 s)
    lrclib.records.append(record(4, "Signal Song", "Test Signals", "Extended", 240, plain="Extended words"))
    video = Track("youtube", "sIgNaLext01", "Test Signals - Signal Song", "https://www.youtube.com/watch?v=x", 252,
                  None, "Test Signals")  # fmt: skip
    lyrics, _how, _in_time = service.find_lyrics(client(lrclib), lyrics_query(video), slack_s=30)
    assert lyrics is not None and lyrics.album_name == "Extended"


def test_a_miss_falls_back_to_search_then_no_lyrics_found(lrclib: FakeLrclib, tmp_path: object) -> None:
    unknown = Track("youtube", "nOnEsUcH001", "Nobody - Unknown Song (Lyrics)", "https://www.youtube.com/watch?v=n",
                    200, None, "Some Lyrics Channel")  # fmt: skip
    query = lyrics_query(unknown)
    lyrics, how, _ = service.find_lyrics(client(lrclib), query)
    assert lyrics is None and how == ""
    # signature, then search by names, then LRCLIB's free-text search
    assert lrclib.paths() == ["/api/get", "/api/search", "/api/search"]
    assert lrclib.requests[2][1] == {"q": "Nobody Unknown Song"}
    result = service.LyricsResult(digest=service.track_digest(unknown), asked=query.label, lyrics=None)
    answer = pages.body(result)
    assert answer["content"].startswith("No lyrics found for Nobody – Unknown Song.")
    assert "/lyrics query:" in answer["content"] and answer["embeds"] == []


def test_an_instrumental_says_so(lrclib: FakeLrclib) -> None:
    lyrics, _, _ = service.find_lyrics(client(lrclib), LyricsQuery("Test Signals", "Drone In A", duration_s=95))
    assert lyrics is not None and lyrics.instrumental
    answer = pages.body(service.LyricsResult(digest="0" * 32, asked="x", lyrics=lyrics))
    assert answer["content"] == "🎼 **Drone In A – Test Signals** is an instrumental: it has no lyrics."


def test_long_lyrics_are_paged_within_discords_limits(lrclib: FakeLrclib) -> None:
    lyrics, _, _ = service.find_lyrics(client(lrclib), LyricsQuery("Test Signals", "Endless Song", duration_s=600))
    assert lyrics is not None
    result = service.LyricsResult(digest="ab" * 16, asked="x", lyrics=lyrics)
    first = pages.body(result)
    embed = first["embeds"][0]
    assert len(embed["description"]) <= pages.PAGE_CHARS <= 4096
    assert len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"]) <= 6000
    total = int(embed["footer"]["text"].split("/")[1].split(" ")[0])
    assert total >= 4
    # every line appears once, in order, across the pages
    shown = "\n".join(pages.body(result, n)["embeds"][0]["description"] for n in range(1, total + 1))
    assert [line for line in shown.split("\n") if line] == [
        line.replace("-", "\\-") for line in LONG_WORDS.split("\n") if line
    ]
    row = first["components"][0]["components"]
    assert [b["custom_id"] for b in row] == [f"v1:lyrics:{'ab' * 16}:1", f"v1:lyrics:{'ab' * 16}:2"]
    assert row[0]["disabled"] and not row[1]["disabled"]
    last = pages.body(result, total + 5)["components"][0]["components"]  # clamped to the last page
    assert [b["disabled"] for b in last] == [False, True]


def test_free_text_searches_only(lrclib: FakeLrclib) -> None:
    query = LyricsQuery(text="signal song", track="signal song")
    lyrics, how, _ = service.find_lyrics(client(lrclib), query)
    assert lyrics is not None and lyrics.track_name == "Signal Song" and how == "search"
    assert lrclib.paths() == ["/api/search"]


def test_a_failing_service_raises_its_sentence(lrclib: FakeLrclib) -> None:
    lrclib.mode = "failing"
    with pytest.raises(LyricsUnavailableError, match="LRCLIB"):
        service.find_lyrics(client(lrclib), lyrics_query(TOPIC_UPLOAD))


def test_a_redirect_is_not_followed(lrclib: FakeLrclib) -> None:
    lrclib.mode = "redirecting"
    with pytest.raises(LyricsUnavailableError):
        client(lrclib).get(LyricsQuery("Test Signals", "Signal Song", duration_s=180))
    assert lrclib.paths() == ["/api/get"]


def test_the_guard_refuses_an_lrclib_url_it_was_not_told_about(lrclib: FakeLrclib) -> None:
    netguard.revoke(lrclib.allowance)
    try:
        with pytest.raises(LyricsUnavailableError):
            client(lrclib).get(LyricsQuery("Test Signals", "Signal Song", duration_s=180))
        assert lrclib.requests == []
    finally:
        netguard.configure(allow=[lrclib.allowance])


def test_hits_and_misses_are_cached_with_their_ttls(lrclib: FakeLrclib, store: Store, clock: FakeClock) -> None:
    source = client(lrclib)
    hit = service.lookup(store, source, service.track_digest(TOPIC_UPLOAD), lyrics_query(TOPIC_UPLOAD),
                         hit_ttl_s=3600, miss_ttl_s=60)  # fmt: skip
    miss_digest = service.text_digest("nothing like this")
    miss = service.lookup(store, source, miss_digest, LyricsQuery(text="nothing like this"), hit_ttl_s=3600,
                          miss_ttl_s=60)  # fmt: skip
    asked = len(lrclib.requests)
    # WHEN both are asked again THEN the store answers, and LRCLIB hears nothing
    again = service.lookup(store, source, hit.digest, lyrics_query(TOPIC_UPLOAD), hit_ttl_s=3600, miss_ttl_s=60)
    assert again == hit and again.found
    assert service.lookup(store, source, miss_digest, LyricsQuery(text="x"), hit_ttl_s=3600, miss_ttl_s=60) == miss
    assert len(lrclib.requests) == asked
    # WHEN the miss's TTL passes THEN it is asked again; the hit is still kept
    clock.advance(61)
    assert service.cached(store, miss_digest) is None
    assert service.cached(store, hit.digest) == hit
