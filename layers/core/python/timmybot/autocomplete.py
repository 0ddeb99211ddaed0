"""/play autocomplete: choices for a partly typed query, within a strict time budget.

Order: the user's own recent plays, then the guild's history (both matching what was typed), then
query suggestions from the configured ``SuggestionSource`` (``timmybot.sources.suggestions``; off
with ``suggest_source=off``), de-duplicated, at most 25 choices, names and values at most 100
characters (Discord's limits). A recent play's value is its link when that fits, else its words.

The budget (``autocomplete_budget_ms``, at most 800 ms) is measured on the injected ``clock``: the
suggestion request runs in a daemon thread, and the caller waits for it only while the clock says
there is budget left; then it sets the request's ``cancelled`` event and answers with what it has.
A prefix's suggestions are cached in the store ("suggestion cache", ``timmybot.store.keys``) for
``suggest_cache_s``, so the same prefix typed again makes no request. Any failure of the source
or the cache gives the history alone (or no choices), never an error.

No heavy module (yt_dlp, discord, spotipy) is imported here: the cold-import benchmark checks it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from timmybot import text
from timmybot.store.keys import SUGGEST_SK, suggest_pk

if TYPE_CHECKING:
    from timmybot.models import Track
    from timmybot.sources.suggestions import SuggestionSource
    from timmybot.store.base import Store

_log = logging.getLogger(__name__)

CHOICES_MAX = 25  # Discord's limit of autocomplete choices
CHOICE_MAX = 100  # ...and of a choice's name and value
HISTORY_SHOWN = 15  # recent plays leave room for suggestions
PREFIX_MAX = 100  # what is sent to the suggestion source and keys the cache
SUGGEST_MIN_CHARS = 2  # a single letter is not worth a request
WAIT_STEP_S = 0.02  # how often the wait looks at the clock
BUDGET_MAX_S = 0.8


@dataclass(frozen=True)
class Choice:
    name: str
    value: str

    def to_dict(self) -> dict[str, str | int | float]:
        return {"name": self.name, "value": self.value}


def play_choices(
    typed: str,
    *,
    user_id: str,
    guild_id: str,
    store: Store,
    suggester: SuggestionSource | None,
    budget_s: float = BUDGET_MAX_S,
    cache_ttl_s: float = 300.0,
    query_max: int = 200,
    clock: Callable[[], float] = time.monotonic,
) -> list[Choice]:
    """The choices for ``typed`` (see the module docstring). Never raises for the source's sake."""
    started = clock()
    budget_s = min(max(0.0, budget_s), BUDGET_MAX_S)
    prefix = " ".join(typed.split())[:PREFIX_MAX]
    if not text.is_encodable(prefix):
        return []
    choices: list[Choice] = []
    seen: set[str] = set()
    try:
        for track in _recent(store, user_id, guild_id):
            if len(choices) >= HISTORY_SHOWN:
                break
            if _matches(prefix, track):
                _add(choices, seen, _track_choice(track, query_max))
    except Exception:
        _log.warning("autocomplete: the history could not be read for user %s", user_id, exc_info=True)
    if suggester is None or len(prefix) < SUGGEST_MIN_CHARS:
        return choices[:CHOICES_MAX]
    key = suggest_pk(suggester.name, prefix.casefold())
    suggestions = _cached(store, key)
    if suggestions is None:
        remaining = budget_s - (clock() - started)
        suggestions = _fetch_within(suggester, prefix, remaining, clock)
        if suggestions is not None and cache_ttl_s > 0:
            try:
                store.update_record(key, SUGGEST_SK, lambda _c: {"items": list(suggestions or ())}, ttl_s=cache_ttl_s)
            except Exception:
                _log.warning("autocomplete: could not cache suggestions", exc_info=True)
    for suggestion in suggestions or ():
        if len(choices) >= CHOICES_MAX:
            break
        if len(suggestion) <= min(CHOICE_MAX, query_max):
            _add(choices, seen, Choice(suggestion, suggestion))
    return choices[:CHOICES_MAX]


def _recent(store: Store, user_id: str, guild_id: str) -> list[Track]:
    from timmybot.library.personal import history  # noqa: PLC0415 - light: the Track model and the store keys

    tracks = list(history(store, user_id))
    tracks.extend(entry.track for entry in store.guild_history(guild_id) if entry.track.identified)
    return tracks


def _matches(prefix: str, track: Track) -> bool:
    if not prefix:
        return True
    haystack = f"{track.title} {track.artist or ''}".casefold()
    return all(word in haystack for word in prefix.casefold().split())


def _track_choice(track: Track, query_max: int) -> Choice:
    name = " ".join(f"{track.title} · {track.artist}".split()) if track.artist else " ".join(track.title.split())
    if len(track.url) <= min(CHOICE_MAX, query_max) and track.url.isascii():
        value = track.url
    else:
        value = text.cap(" ".join(f"{track.artist or ''} {track.title}".split()), min(CHOICE_MAX, query_max))
    return Choice(text.cap(name, CHOICE_MAX) or value[:CHOICE_MAX], value)


def _add(choices: list[Choice], seen: set[str], choice: Choice) -> None:
    """Append ``choice`` unless its name or value was offered already (compared case-blind)."""
    keys = {choice.name.casefold(), choice.value.casefold()}
    if not choice.value or keys & seen:
        return
    seen.update(keys)
    choices.append(choice)


def _cached(store: Store, key: str) -> list[str] | None:
    try:
        record = store.get_record(key, SUGGEST_SK)
    except Exception:
        _log.warning("autocomplete: the suggestion cache could not be read", exc_info=True)
        return None
    if record is None:
        return None
    return [s for s in record.get("items") or () if isinstance(s, str)]


def _fetch_within(
    suggester: SuggestionSource, prefix: str, remaining_s: float, clock: Callable[[], float]
) -> list[str] | None:
    """The source's answer if it comes while ``clock`` says there is budget left; None otherwise
    (timeout, error). On timeout the request's ``cancelled`` event is set."""
    if remaining_s <= 0:
        return None
    from timmybot.sources.suggestions import SuggestionError  # noqa: PLC0415

    deadline = clock() + remaining_s
    cancelled = threading.Event()
    done = threading.Event()
    box: list[list[str]] = []

    def run() -> None:
        try:
            box.append(suggester.suggest(prefix, timeout_s=remaining_s, cancelled=cancelled))
        except SuggestionError as exc:
            _log.info("autocomplete: suggestions failed (%s)", exc)
        except Exception:
            _log.warning("autocomplete: suggestions failed", exc_info=True)
        finally:
            done.set()

    threading.Thread(target=run, name="autocomplete-suggest", daemon=True).start()
    while not done.is_set():
        left = deadline - clock()
        if left <= 0:
            cancelled.set()
            _log.info("autocomplete: suggestions over the budget; answering without them")
            return None
        done.wait(min(WAIT_STEP_S, left))
    return box[0] if box else None


def choices_payload(choices: Sequence[Choice]) -> tuple[dict[str, str | int | float], ...]:
    return tuple(c.to_dict() for c in choices[:CHOICES_MAX])
