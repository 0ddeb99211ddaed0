"""yt-dlp's failures, translated: the one table ``ERROR_RULES`` and ``map_ytdlp_error``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from timmybot.errors import (
    AgeRestrictedError,
    BlockedSourceError,
    GeoBlockedError,
    SourceError,
    SourceLoginRequiredError,
    SourceRateLimitedError,
    SourceServerError,
    SourceTimeoutError,
    SourceUnreachableError,
    StreamForbiddenError,
    TrackUnavailableError,
    UnsupportedUrlError,
)

from ..operator import redact

_log = logging.getLogger(__name__)


# The one mapping table: (lower-cased needles searched in the yt-dlp message and in the messages of
# its causes, error to raise). First match wins, so the more specific rules come first. The needles
# are yt-dlp's own texts (extractor/youtube/_video.py, extractor/common.py, networking/) and the
# reasons YouTube itself returns in playabilityStatus.
ERROR_RULES: tuple[tuple[tuple[str, ...], Callable[[], SourceError]], ...] = (
    (("confirm you're not a bot", "confirm you’re not a bot"), BlockedSourceError),
    (
        ("has been rate-limited by youtube", "requiring a captcha challenge"),
        lambda: BlockedSourceError(
            "That site is rate-limiting me right now. Try another link, or again in a few minutes."
        ),
    ),
    (
        (
            "not available in your country",
            "not available from your location",
            "geo restriction",
            "geo-restrict",
        ),
        GeoBlockedError,
    ),
    (("confirm your age", "age-restricted", "inappropriate for some users"), AgeRestrictedError),
    (
        (
            "video unavailable",
            "this video is private",
            "private video",
            "removed",
            "members-only",
            "join this channel",
            "this video is not available",
            "track is not available",
            "account associated with this video has been terminated",
            "premieres in",
            "http error 404",
        ),
        TrackUnavailableError,
    ),
    (
        (
            "only available for registered users",
            "login details are needed",
            "sign in to",
            "use --cookies",
        ),
        SourceLoginRequiredError,
    ),
    (("http error 403",), StreamForbiddenError),
    (("http error 429", "too many requests"), SourceRateLimitedError),
    (tuple(f"http error {status}" for status in range(500, 512)), SourceServerError),
    (("timed out", "timeout"), SourceTimeoutError),
    (
        (
            "failed to resolve",
            "name or service not known",
            "temporary failure in name resolution",
            "connection refused",
            "network is unreachable",
            "unable to connect to proxy",
        ),
        SourceUnreachableError,
    ),
    (("unsupported url", "no suitable extractor"), UnsupportedUrlError),
    (
        ("requested format is not available", "no video formats found"),
        lambda: SourceError("I couldn't get a playable stream for that track right now."),
    ),
)


def _messages(exc: BaseException) -> Iterable[str]:
    """The message of ``exc`` and of what caused it (DownloadError.exc_info, ExtractorError.cause...)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 8:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        exc_info = getattr(current, "exc_info", None)
        candidates = [
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            getattr(current, "cause", None),
            current.__cause__,
            current.__context__,
        ]
        pending.extend(c for c in candidates if isinstance(c, BaseException))


def _typed_error(exc: BaseException) -> SourceError | None:
    """Errors told apart by yt-dlp's exception types rather than by their wording."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError  # noqa: PLC0415 - lazy on purpose
    from yt_dlp.utils import GeoRestrictedError  # noqa: PLC0415

    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 8:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, GeoRestrictedError):
            return GeoBlockedError()
        if isinstance(current, HTTPError) and current.status == 403:
            return StreamForbiddenError()
        if isinstance(current, HTTPError) and current.status == 429:
            return SourceRateLimitedError()
        if isinstance(current, HTTPError) and 500 <= current.status <= 599:
            return SourceServerError()
        if isinstance(current, TimeoutError):
            return SourceTimeoutError()
        if isinstance(current, TransportError) and not isinstance(current.cause, TimeoutError):
            return SourceUnreachableError()
        exc_info = getattr(current, "exc_info", None)
        for candidate in (
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            getattr(current, "cause", None),
            current.__cause__,
        ):
            if isinstance(candidate, BaseException):
                pending.append(candidate)
    return None


def map_ytdlp_error(exc: BaseException, *, target: str) -> SourceError:
    """Translate a yt-dlp exception into the domain error the user should read.

    The message rules come first (a bot check may arrive wrapped in a 403); yt-dlp's exception
    types decide when no wording matches. Operator-secret values are scrubbed from the log line.
    """
    messages = [m.replace("’", "'").lower() for m in _messages(exc)]
    for needles, make in ERROR_RULES:
        if any(needle.replace("’", "'") in message for message in messages for needle in needles):
            error = make()
            _log.info("yt-dlp refused %s: %s -> %s", target, redact(str(exc)), type(error).__name__)
            return error
    typed = _typed_error(exc)
    if typed is not None:
        _log.info("yt-dlp refused %s: %s -> %s", target, redact(str(exc)), type(typed).__name__)
        return typed
    _log.warning("yt-dlp failed on %s: %s", target, redact(str(exc)))
    return SourceError("I couldn't get that from the site right now. Please try again in a moment.")
