"""Resolve one known public track per source with the real adapters; exit non-zero if any fails.

    python scripts/canary.py [--sources youtube,soundcloud] [--timeout 15] [--metadata-only] [--leave-breakers]

For operators and the scheduled deployment workflow: it catches YouTube's bot checks, a yt-dlp
that fell behind, a missing JavaScript runtime or a dead proxy before users do. Each source gets
one line: ``canary youtube: OK ...`` or ``canary youtube: FAILED (<reason>) ...`` with the operator
hint. It reads the same ``TIMMYBOT_*`` settings as the worker and the voice task, so the operator
source secret (cookies, proxy, PO-token provider, player clients) is used exactly as in production
(``--source-secret-file``/``--source-secret-id`` override it). Circuit breakers are bypassed: the
canary asks the sources themselves. A source that fails its known-good track has its breaker opened
for a cool-down in the bot's store (``CircuitBreaker.trip``), so every Lambda and voice task stops
asking it; its half-open trial closes it again once the source recovers (``--leave-breakers``: only
report). Exit status: 0 all passed, 1 a source failed, 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "layers" / "core" / "python",):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from timmybot.config import Settings, SettingsError  # noqa: E402
from timmybot.errors import SourceError  # noqa: E402
from timmybot.sources.base import Source  # noqa: E402
from timmybot.sources.breaker import CircuitBreaker  # noqa: E402
from timmybot.sources.factories import build_source  # noqa: E402
from timmybot.sources.failures import failure_of  # noqa: E402
from timmybot.sources.models import SourceSettings  # noqa: E402
from timmybot.sources.operator import redact  # noqa: E402
from timmybot.sources.policy import classify_query  # noqa: E402

# Long-lived public uploads (both are used by yt-dlp's own extractor tests).
KNOWN_TRACKS: dict[str, str] = {
    "youtube": "https://www.youtube.com/watch?v=jNQXAC9IVRw",  # "Me at the zoo"
    "soundcloud": "https://soundcloud.com/forss/flickermood",
}
# Sources without links of their own are checked with a search.
KNOWN_SEARCHES: dict[str, str] = {"ytmusic": "me at the zoo jawed"}

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


SourceBuilder = Callable[[str, SourceSettings], Source]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One source's canary: passed or not, the line printed, and the failure's reason (None: passed,
    or a failure of the canary itself rather than of the site)."""

    passed: bool
    line: str
    reason: str | None = None


def check(name: str, settings: SourceSettings, *, metadata_only: bool, build: SourceBuilder = build_source) -> Outcome:
    """One source: resolve its known track (and its stream)."""
    try:
        source = build(name, settings)
        if name in KNOWN_TRACKS:
            [track, *_] = source.resolve(classify_query(KNOWN_TRACKS[name], settings))
        else:
            [track] = source.search(KNOWN_SEARCHES[name], limit=1)
        detail = f"{track.title!r}, {track.duration_s} s"
        if not metadata_only:
            stream = source.stream(track)
            detail += f", stream {stream.codec or stream.container or 'ok'}"
    except SourceError as exc:
        failure = failure_of(exc)
        cause = redact(str(exc.__cause__ or exc)).splitlines()[0][:240]
        hint = f" Hint: {failure.hint}." if failure.hint else ""
        line = f"canary {name}: FAILED ({failure.reason.value}) {exc.user_message} [{cause}]{hint}"
        return Outcome(False, line, failure.reason.value)
    except Exception as exc:
        return Outcome(False, f"canary {name}: FAILED (unexpected {type(exc).__name__}) {redact(str(exc))[:240]}")
    return Outcome(True, f"canary {name}: OK ({detail})")


def settings_breaker(settings: Settings) -> CircuitBreaker:
    """The breakers every Lambda and voice task reads: the bot's own store, as the settings name it."""
    from timmybot.store import build_store  # noqa: PLC0415 - only when the breakers are to be opened

    sources = settings.source_settings()
    return CircuitBreaker(
        build_store(settings), threshold=sources.breaker_threshold, cooldown_s=sources.breaker_cooldown_s
    )


def run(
    names: Sequence[str],
    settings: SourceSettings,
    *,
    metadata_only: bool = False,
    build: SourceBuilder = build_source,
    breaker: CircuitBreaker | None = None,
) -> int:
    """Check each source, print its line, and open the breaker of each that the site failed
    (``breaker``: None leaves the breakers alone). Returns the exit status."""
    failed = 0
    for name in names:
        outcome = check(name, settings, metadata_only=metadata_only, build=build)
        print(outcome.line, file=sys.stdout if outcome.passed else sys.stderr)
        failed += not outcome.passed
        if outcome.reason is not None and breaker is not None and breaker.trip(name, outcome.reason):
            print(f"canary {name}: breaker opened for {settings.breaker_cooldown_s:.0f} s", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Resolve one known track per source; non-zero exit on failure.")
    parser.add_argument("--sources", default="youtube,soundcloud", help="comma-separated: youtube,soundcloud,ytmusic")
    parser.add_argument("--timeout", type=float, help="socket timeout in seconds (default: the settings')")
    parser.add_argument("--metadata-only", action="store_true", help="skip stream resolution")
    parser.add_argument("--source-secret-file", help="operator source secret as a local JSON file")
    parser.add_argument("--source-secret-id", help="operator source secret in Secrets Manager")
    parser.add_argument(
        "--leave-breakers", action="store_true", help="only report: do not open the breaker of a failing source"
    )
    parser.add_argument("--verbose", action="store_true", help="log what the sources do")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s"
    )

    names = [name.strip() for name in args.sources.split(",") if name.strip()]
    unknown = [name for name in names if name not in KNOWN_TRACKS and name not in KNOWN_SEARCHES]
    if not names or unknown:
        print(f"canary: unknown sources {', '.join(unknown) or '(none given)'}", file=sys.stderr)
        return EXIT_USAGE
    overrides: dict[str, Any] = {}
    if args.timeout is not None:
        overrides["source_socket_timeout_s"] = args.timeout
    if args.source_secret_file:
        overrides["source_secret_file"], overrides["source_secret_id"] = args.source_secret_file, ""
    if args.source_secret_id:
        overrides["source_secret_id"], overrides["source_secret_file"] = args.source_secret_id, ""
    try:
        bot_settings = Settings.from_env(**overrides)
        settings = bot_settings.source_settings()
    except (SettingsError, ValueError) as exc:
        print(f"canary: bad settings: {exc}", file=sys.stderr)
        return EXIT_USAGE

    breaker = None if args.leave_breakers else settings_breaker(bot_settings)
    return run(names, settings, metadata_only=args.metadata_only, breaker=breaker)


if __name__ == "__main__":
    sys.exit(main())
