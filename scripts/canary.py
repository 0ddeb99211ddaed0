"""Resolve one known public track per source with the real adapters; exit non-zero if any fails.

    python scripts/canary.py [--sources youtube,soundcloud] [--timeout 15] [--metadata-only]

For operators and the scheduled deployment workflow: it catches YouTube's bot checks, a yt-dlp
that fell behind, a missing JavaScript runtime or a dead proxy before users do. Each source gets
one line: ``canary youtube: OK ...`` or ``canary youtube: FAILED (<reason>) ...`` with the operator
hint. It reads the same ``TIMMYBOT_*`` settings as the worker and the voice task, so the operator
source secret (cookies, proxy, PO-token provider, player clients) is used exactly as in production
(``--source-secret-file``/``--source-secret-id`` override it). Circuit breakers are bypassed: the
canary asks the sources themselves. Exit status: 0 all passed, 1 a source failed, 2 bad usage or
settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "layers" / "core" / "python",):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from timmybot.config import Settings, SettingsError  # noqa: E402
from timmybot.errors import SourceError  # noqa: E402
from timmybot.sources.chain import build_source  # noqa: E402
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


def check(name: str, settings: SourceSettings, *, metadata_only: bool) -> tuple[bool, str]:
    """One source: resolve its known track (and its stream); returns (passed, one line)."""
    try:
        source = build_source(name, settings)
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
        return False, f"canary {name}: FAILED ({failure.reason.value}) {exc.user_message} [{cause}]{hint}"
    except Exception as exc:
        return False, f"canary {name}: FAILED (unexpected {type(exc).__name__}) {redact(str(exc))[:240]}"
    return True, f"canary {name}: OK ({detail})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Resolve one known track per source; non-zero exit on failure.")
    parser.add_argument("--sources", default="youtube,soundcloud", help="comma-separated: youtube,soundcloud,ytmusic")
    parser.add_argument("--timeout", type=float, help="socket timeout in seconds (default: the settings')")
    parser.add_argument("--metadata-only", action="store_true", help="skip stream resolution")
    parser.add_argument("--source-secret-file", help="operator source secret as a local JSON file")
    parser.add_argument("--source-secret-id", help="operator source secret in Secrets Manager")
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
    overrides: dict[str, object] = {}
    if args.timeout is not None:
        overrides["source_socket_timeout_s"] = args.timeout
    if args.source_secret_file:
        overrides["source_secret_file"], overrides["source_secret_id"] = args.source_secret_file, ""
    if args.source_secret_id:
        overrides["source_secret_id"], overrides["source_secret_file"] = args.source_secret_id, ""
    try:
        settings = Settings.from_env(**overrides).source_settings()
    except (SettingsError, ValueError) as exc:
        print(f"canary: bad settings: {exc}", file=sys.stderr)
        return EXIT_USAGE

    failed = 0
    for name in names:
        passed, line = check(name, settings, metadata_only=args.metadata_only)
        print(line, file=sys.stdout if passed else sys.stderr)
        failed += not passed
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
