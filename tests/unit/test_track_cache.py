"""The track cache serves: a second /play of the same link or query within 7 days asks no source for
metadata, an expired entry reads as absent, and every lookup counts as a hit or a miss."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from tests.support.signing import Signer, make_settings
from tests.support.sources import CatalogEntry, LoopbackSite
from timmybot.config import Settings
from timmybot.sources import SourceSettings
from timmybot.sources.chain import SourceChain
from timmybot.store.memory import MemoryStore
from timmybot.worker.play import resolve_tracks

BASE = "http://127.0.0.1:9"  # never contacted: the loopback site answers from its catalog
WEEK = 7 * 24 * 3600
SOURCE_SETTINGS = SourceSettings(allow_local_media=True)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, Signer(), allow_local_media=True)


def _world() -> tuple[FakeClock, MemoryStore, LoopbackSite, SourceChain]:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    site = LoopbackSite("ytfake", BASE, [CatalogEntry("song.webm", "Song", "Artist", 200)])
    return clock, store, site, SourceChain.over_store(SOURCE_SETTINGS, store, sources=[site], clock=clock)


def _metadata_calls(site: LoopbackSite) -> int:
    return sum(1 for call in site.calls if call in ("resolve", "search", "isrc"))


@pytest.mark.parametrize("query", [f"{BASE}/song.webm", "artist song"], ids=["link", "search"])
def test_a_repeat_play_within_7_days_asks_no_source_and_after_7_days_asks_once(settings: Settings, query: str) -> None:
    # GIVEN a /play that resolved the link (or search) once
    clock, store, site, chain = _world()
    first = resolve_tracks(query, store=store, sources=chain, settings=settings)
    assert _metadata_calls(site) == 1

    # WHEN the same is played again 6 days later
    clock.advance(WEEK - 24 * 3600)
    again = resolve_tracks(query, store=store, sources=chain, settings=settings)

    # THEN the cache answered: the same track, no metadata call
    assert again == first
    assert _metadata_calls(site) == 1

    # AND past 7 days from the first resolve the entry is expired (no TTL sweep ran): one call
    clock.advance(24 * 3600 + 1)
    resolve_tracks(query, store=store, sources=chain, settings=settings)
    assert _metadata_calls(site) == 2


def test_a_search_answer_is_kept_per_source_order(settings: Settings) -> None:
    # GIVEN two sites that both find the words, and a search answered with the first one first
    clock, store, first_site, chain = _world()
    second_site = LoopbackSite("scfake", BASE, [CatalogEntry("other.webm", "Song", "Artist", 200)])
    chain = SourceChain.over_store(SOURCE_SETTINGS, store, sources=[first_site, second_site], clock=clock)
    [usual] = resolve_tracks("artist song", store=store, sources=chain, settings=settings)

    # WHEN a user who puts the second site first searches the same words
    [preferred] = resolve_tracks("artist song", store=store, sources=chain.preferring("scfake"), settings=settings)

    # THEN they get the second site's answer, not the cached one of the other order
    assert (usual.source, preferred.source) == ("ytfake", "scfake")
    assert second_site.calls == ["search"]


def test_each_lookup_is_counted_as_a_hit_or_a_miss(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    _clock, store, _site, chain = _world()

    with caplog.at_level(logging.INFO, logger="timmybot.metrics"):
        resolve_tracks(f"{BASE}/song.webm", store=store, sources=chain, settings=settings)
        resolve_tracks(f"{BASE}/song.webm", store=store, sources=chain, settings=settings)

    lookups = [r.getMessage() for r in caplog.records if "metric=TrackCacheLookups" in r.getMessage()]
    assert lookups == [
        "metric=TrackCacheLookups value=1 result=miss",
        "metric=TrackCacheLookups value=1 result=hit",
    ]
