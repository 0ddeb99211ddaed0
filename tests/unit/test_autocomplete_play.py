"""/play autocomplete against a loopback suggestion endpoint (working, failing, slow): recent plays
first, then suggestions, de-duplicated and bounded; a prefix's suggestions cached in the store; the
budget proven on an injected clock (the slow fake moves it past the budget while the request is
in flight, and the answer comes without waiting for it); through the api, the rate limit and the
spec checks of every answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clock import FakeClock
from tests.support.fake_suggest import FakeSuggestions
from tests.support.handler_kit import handler_api
from tests.support.signing import GUILD_ID, OTHER_USER_ID, USER_ID
from timmybot import autocomplete
from timmybot.library.personal import record_history
from timmybot.models import QueueEntry, Track
from timmybot.sources.suggestions import YouTubeSuggestions, parse_answer
from timmybot.store.keys import SUGGEST_SK, kind_of, suggest_pk
from timmybot.store.memory import MemoryStore

pytestmark = [pytest.mark.timeout(60)]


def _track(n: int, title: str, artist: str | None = "The Band") -> Track:
    vid = f"vid{n:08d}"
    return Track("youtube", vid, title, f"https://www.youtube.com/watch?v={vid}", 200, None, artist)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def fake() -> Iterator[FakeSuggestions]:
    with FakeSuggestions(
        answers={
            "signal": ["signal song", "Signal Song", "signal song live", "signal fire snow patrol"],
            "fur": ["für elise", "fur elise piano"],
        }
    ) as server:
        yield server


def _choices(store: MemoryStore, typed: str, source: YouTubeSuggestions | None, **kw: Any) -> list[autocomplete.Choice]:
    return autocomplete.play_choices(typed, user_id=USER_ID, guild_id=GUILD_ID, store=store, suggester=source, **kw)


def _with_history(store: MemoryStore) -> None:
    record_history(store, USER_ID, [_track(1, "Signal Song", None), _track(2, "Other Tune")], now=1.0)
    guild_played = _track(3, "Signal Fire", "Snow Patrol")
    store.record_played(GUILD_ID, QueueEntry("g1", guild_played, OTHER_USER_ID, 1.0), now=1.0, seq=0)


def test_history_first_then_suggestions_deduplicated(store: MemoryStore, fake: FakeSuggestions) -> None:
    _with_history(store)
    got = _choices(store, "signal", YouTubeSuggestions(fake.url))
    assert [(c.name, c.value) for c in got] == [
        ("Signal Song", _track(1, "").url),  # the user's own recent play ("Other Tune" does not match)
        ("Signal Fire · Snow Patrol", _track(3, "").url),
        ("signal song live", "signal song live"),  # "signal song" twice (any case) is the recent play
        ("signal fire snow patrol", "signal fire snow patrol"),
    ]
    assert fake.requests == ["signal"]


def test_the_same_prefix_within_the_cache_ttl_makes_no_fetch(store: MemoryStore, fake: FakeSuggestions) -> None:
    source = YouTubeSuggestions(fake.url)
    first = _choices(store, "signal", source)
    again = _choices(store, "  Signal ", source)  # the same prefix, typed with spaces and capitals
    assert first == again and fake.requests == ["signal"]
    key = suggest_pk("youtube", "signal")
    assert store.get_record(key, SUGGEST_SK) is not None
    kind = kind_of(key, SUGGEST_SK)
    assert kind is not None and kind.name == "suggestion cache"


def test_a_failing_source_gives_the_history_or_nothing(store: MemoryStore, fake: FakeSuggestions) -> None:
    fake.mode = "failing"
    source = YouTubeSuggestions(fake.url)
    assert _choices(store, "signal", source) == []
    _with_history(store)
    assert [c.name for c in _choices(store, "signal", source)] == ["Signal Song", "Signal Fire · Snow Patrol"]
    assert store.get_record(suggest_pk("youtube", "signal"), SUGGEST_SK) is None  # a failure is not cached


def test_a_slow_source_is_cut_at_the_budget_on_the_injected_clock(store: MemoryStore, fake: FakeSuggestions) -> None:
    clock = FakeClock()
    fake.mode = "slow"
    fake.on_request = lambda: clock.advance(0.9)  # the request is in flight when the budget runs out
    source = YouTubeSuggestions(fake.url)
    # no history: no choices, no error, and no waiting for the held request
    assert _choices(store, "signal", source, clock=clock) == []
    assert fake.requests == ["signal"] and not fake.release.is_set()
    # with history: the history alone
    _with_history(store)
    got = _choices(store, "signal", source, clock=clock)
    assert [c.name for c in got] == ["Signal Song", "Signal Fire · Snow Patrol"]
    assert not fake.release.is_set()  # both answers came while the fake still held its requests
    fake.release.set()


def test_a_budget_spent_before_the_fetch_sends_no_request(store: MemoryStore, fake: FakeSuggestions) -> None:
    clock = FakeClock()
    assert _choices(store, "signal", YouTubeSuggestions(fake.url), budget_s=0.0, clock=clock) == []
    assert fake.requests == []


def test_the_answer_is_decoded_by_the_charset_of_its_language(store: MemoryStore, fake: FakeSuggestions) -> None:
    got = _choices(store, "fur", YouTubeSuggestions(fake.url, language="de"))
    assert [c.name for c in got] == ["für elise", "fur elise piano"]
    assert parse_answer('["q", ["caf\u00e9"]]'.encode("iso-8859-1"), "ISO-8859-1") == ["caf\u00e9"]


def test_choices_are_bounded_in_count_and_length(store: MemoryStore, fake: FakeSuggestions) -> None:
    record_history(store, USER_ID, [_track(n, f"Signal {n:02d} " + "x" * 300) for n in range(40)], now=1.0)
    fake.answers["signal"] = [f"signal {n}" for n in range(20)] + ["signal " + "y" * 150]
    got = _choices(store, "signal", YouTubeSuggestions(fake.url))
    assert len(got) == 25
    assert all(1 <= len(c.name) <= 100 and 1 <= len(c.value) <= 100 for c in got)
    assert len({c.value for c in got}) == 25
    assert got[0].name.startswith("Signal 39 xxx") and got[-1].name == "signal 9"


def test_off_means_no_request_and_a_lone_letter_asks_nothing(store: MemoryStore, fake: FakeSuggestions) -> None:
    _with_history(store)
    assert [c.name for c in _choices(store, "signal", None)] == ["Signal Song", "Signal Fire · Snow Patrol"]
    assert [c.name for c in _choices(store, "s", YouTubeSuggestions(fake.url))][:1] == ["Signal Song"]
    assert fake.requests == []


# ---------------------------------------------------------------------- through the api
def _autocomplete(typed: str, *, user_id: str = USER_ID, focused: str = "query") -> dict[str, Any]:
    from tests.support.signing import _base  # noqa: PLC0415 - the suite's payload builder

    options = [{"name": focused, "type": 3, "value": typed, "focused": True}]
    return _base(4, {"name": "play", "type": 1, "options": options}, guild_id=GUILD_ID, user_id=user_id,
                 roles=(), permissions="0", interaction_id=None)  # fmt: skip


def test_through_the_api_with_its_rate_limit(tmp_path: Path, fake: FakeSuggestions) -> None:
    settings = {"suggest_url": fake.url, "rate_autocomplete_user": "2/60"}
    with handler_api(tmp_path, **settings) as api:
        record_history(api.store, USER_ID, [_track(1, "Signal Song", None)], now=time.time())
        body = api.post(_autocomplete("signal")).json_body
        assert body["type"] == 8
        assert [c["name"] for c in body["data"]["choices"]] == [
            "Signal Song",
            "signal song live",
            "signal fire snow patrol",
        ]
        assert api.post(_autocomplete("signal", focused="placement")).json_body == {"type": 8, "data": {"choices": []}}
        # over the limit (2 a minute): no choices, never a sentence
        assert api.post(_autocomplete("signal")).json_body == {"type": 8, "data": {"choices": []}}
    assert fake.requests == ["signal"]


def test_through_the_api_with_suggestions_off(tmp_path: Path, fake: FakeSuggestions) -> None:
    with handler_api(tmp_path, suggest_url=fake.url, suggest_source="off") as api:
        body = api.post(_autocomplete("signal")).json_body
        assert body == {"type": 8, "data": {"choices": []}}
    assert fake.requests == []
