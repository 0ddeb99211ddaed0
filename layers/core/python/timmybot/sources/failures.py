"""What each source failure means: a reason code, whose fault it is, what to tell the operator.

The user sentence lives on the error itself (``SourceError.user_message``). This table adds what the
chain needs to decide (fall back? count towards the breaker, and how?) and what the operator reads in
the logs. One table, read by ``failure_of``; ``report_failure`` logs the hint and emits the metric.

Each reason has a ``Scope`` (docs/SOURCES.md, "The circuit breaker"):

- ``SOURCE``: the source as a whole refuses or is down (bot check, HTTP 429, 5xx, timeout,
  unreachable). Counts towards its breaker as consecutive failures of one reason.
- ``TRACK``: may well be about the one track asked for (an unknown extractor error, a sign-in wall,
  a 403 on one stream). Counts only when it spreads: ``breaker.SpreadRule``.
- ``NONE``: the user's request or the track's own state (not found, too long, removed, age- or
  geo-restricted): never counts.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from timmybot.errors import (
    AgeRestrictedError,
    BlockedSourceError,
    GeoBlockedError,
    SourceError,
    SourceLoginRequiredError,
    SourceRateLimitedError,
    SourceRestingError,
    SourceServerError,
    SourceTimeoutError,
    SourceUnreachableError,
    StreamForbiddenError,
    TrackNotFoundError,
    TrackTooLongError,
    TrackUnavailableError,
    UnsupportedUrlError,
)

from .metrics import emit_source_failure
from .operator import redact

_log = logging.getLogger(__name__)

DOCS = "docs/SOURCES.md"


class Reason(enum.StrEnum):
    """Why a source did not give us a track or a stream (the metric's ``reason`` dimension)."""

    BOT_CHECK = "bot_check"
    LOGIN_REQUIRED = "login_required"
    AGE_RESTRICTED = "age_restricted"
    GEO_BLOCKED = "geo_blocked"
    UNAVAILABLE = "unavailable"
    STREAM_403 = "stream_403"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    NOT_FOUND = "not_found"
    TOO_LONG = "too_long"
    UNSUPPORTED = "unsupported"
    RESTING = "resting"
    ERROR = "error"


class Scope(enum.StrEnum):
    """Whose fault a failure may be, and so how it counts towards the source's breaker."""

    SOURCE = "source"  # the whole source: counts as consecutive failures of one reason
    TRACK = "track"  # maybe the one track: counts only when it spreads across tracks and guilds
    NONE = "none"  # the request or the track itself: never counts


@dataclass(frozen=True, slots=True)
class Failure:
    """How the chain treats one reason.

    ``scope``: how it counts towards the breaker (``Scope``).
    ``fallback``: another source may well have the same track, so the chain tries the next one.
    ``hint``: what the operator should do, logged with the failure (None: nothing to do).
    """

    reason: Reason
    scope: Scope
    fallback: bool
    hint: str | None

    @property
    def source_fault(self) -> bool:
        """The source may be at fault (source-wide or per-track): worth trying another source."""
        return self.scope is not Scope.NONE

    @property
    def source_wide(self) -> bool:
        """The source as a whole is refusing: counts towards its breaker on its own."""
        return self.scope is Scope.SOURCE


# Most specific class first: AgeRestrictedError and GeoBlockedError are TrackUnavailableErrors.
_TABLE: tuple[tuple[type[SourceError], Failure], ...] = (
    (
        BlockedSourceError,
        Failure(
            Reason.BOT_CHECK,
            scope=Scope.SOURCE,
            fallback=True,
            hint=f"YouTube is asking for a sign-in (bot check): configure cookies or a PO-token provider ({DOCS})",
        ),
    ),
    (
        SourceLoginRequiredError,
        Failure(
            Reason.LOGIN_REQUIRED,
            scope=Scope.TRACK,
            fallback=True,
            hint=(
                "the site wants a signed-in session: add cookies of a throwaway account to the operator "
                f"secret ({DOCS})"
            ),
        ),
    ),
    (
        AgeRestrictedError,
        Failure(
            Reason.AGE_RESTRICTED,
            scope=Scope.NONE,
            fallback=True,
            hint=f"age-restricted track: only cookies of an age-verified account unlock these ({DOCS})",
        ),
    ),
    (
        GeoBlockedError,
        Failure(
            Reason.GEO_BLOCKED,
            scope=Scope.NONE,
            fallback=True,
            hint=f"geo-blocked where the bot runs: a source proxy in another region can help ({DOCS})",
        ),
    ),
    (
        StreamForbiddenError,
        Failure(
            Reason.STREAM_403,
            scope=Scope.TRACK,
            fallback=True,
            hint=(
                "the stream URL answered 403: usually a missing PO token, a missing JavaScript runtime or an "
                f"outdated yt-dlp (scripts/check_ytdlp_version.py, {DOCS})"
            ),
        ),
    ),
    (
        SourceTimeoutError,
        Failure(
            Reason.TIMEOUT,
            scope=Scope.SOURCE,
            fallback=True,
            hint="the site did not answer in time: check the network and the source proxy",
        ),
    ),
    (
        SourceUnreachableError,
        Failure(
            Reason.UNREACHABLE,
            scope=Scope.SOURCE,
            fallback=True,
            hint="the site is unreachable from here: check DNS, outbound network access and the source proxy",
        ),
    ),
    (
        SourceRateLimitedError,
        Failure(
            Reason.RATE_LIMITED,
            scope=Scope.SOURCE,
            fallback=True,
            hint="the site answered HTTP 429 (too many requests): the bot's address is throttled; a source proxy helps",
        ),
    ),
    (
        SourceServerError,
        Failure(
            Reason.SERVER_ERROR,
            scope=Scope.SOURCE,
            fallback=True,
            hint="the site answered with a 5xx status: it is down or overloaded; nothing to do but wait",
        ),
    ),
    (TrackNotFoundError, Failure(Reason.NOT_FOUND, scope=Scope.NONE, fallback=False, hint=None)),
    (TrackTooLongError, Failure(Reason.TOO_LONG, scope=Scope.NONE, fallback=False, hint=None)),
    (UnsupportedUrlError, Failure(Reason.UNSUPPORTED, scope=Scope.NONE, fallback=False, hint=None)),
    (TrackUnavailableError, Failure(Reason.UNAVAILABLE, scope=Scope.NONE, fallback=False, hint=None)),
    (
        SourceRestingError,
        Failure(Reason.RESTING, scope=Scope.NONE, fallback=True, hint="the source's circuit breaker is open"),
    ),
)
_UNKNOWN = Failure(
    Reason.ERROR,
    scope=Scope.TRACK,
    fallback=True,
    hint=f"unexpected extractor failure: update yt-dlp (scripts/check_ytdlp_version.py) and see {DOCS}",
)


def failure_of(error: SourceError) -> Failure:
    """The table row for ``error``; an error the table does not know may be the track's or the
    source's: it counts per track (``Scope.TRACK``) until it spreads."""
    for cls, failure in _TABLE:
        if isinstance(error, cls):
            return failure
    return _UNKNOWN


def report_failure(source: str, error: SourceError, *, operation: str) -> Failure:
    """Log the operator hint and emit the metric for a failure of ``source``; returns its row.

    A failure the user caused (not found, too long, unsupported) is logged at debug and emits no
    metric: it says nothing about the source's health.
    """
    failure = failure_of(error)
    if failure.hint is None:
        _log.debug("source %s: %s (%s) during %s", source, failure.reason.value, type(error).__name__, operation)
        return failure
    _log.warning(
        "source %s failed during %s: reason=%s (%s). Operator hint: %s",
        source,
        operation,
        failure.reason.value,
        redact(str(error.__cause__ or error)),
        failure.hint,
    )
    emit_source_failure(source, failure.reason.value)
    return failure
