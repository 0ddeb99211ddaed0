"""Domain errors.

Every error a user can cause or meet carries the sentence the user reads. One place at each
edge (the interactions router, the worker, the voice task) turns them into ephemeral replies or
notices; nothing else formats user-facing error text.
"""

from __future__ import annotations


class TimmyError(Exception):
    """Base class: ``user_message`` is shown to the Discord user as is."""

    user_message: str = "Something went wrong."

    def __init__(self, user_message: str | None = None) -> None:
        if user_message is not None:
            self.user_message = user_message
        super().__init__(self.user_message)


class InvalidInputError(TimmyError):
    """The user typed something we cannot use; the message says what is allowed."""


class NothingPlayingError(TimmyError):
    user_message = "Nothing is playing right now."


class QueueEmptyError(TimmyError):
    user_message = "The queue is empty."


class QueueFullError(TimmyError):
    user_message = "The queue is full."


class NotAuthorizedError(TimmyError):
    """Guild not on the allowlist, or a DM."""


class PermissionDeniedError(TimmyError):
    """The member may not do this (not a listener, not a DJ, not a manager)."""


class NotInVoiceError(TimmyError):
    user_message = "Join a voice channel first."


class ConflictError(TimmyError):
    """A conditional write lost a race; callers usually retry."""

    user_message = "That clashed with another change; please try again."


class StaleGenerationError(ConflictError):
    """A voice task wrote with a lease generation that is no longer current."""


class SourceError(TimmyError):
    """Base for every failure to find or stream a track."""

    user_message = "I couldn't play that."


class BlockedSourceError(SourceError):
    user_message = "That site refused to serve the track right now (it asked me to sign in). Try another link."


class UnsupportedUrlError(SourceError):
    user_message = "I can only play links from YouTube, YouTube Music, SoundCloud and Spotify."


class TrackNotFoundError(SourceError):
    user_message = "I couldn't find anything for that."


class TrackUnavailableError(SourceError):
    user_message = "That track is unavailable."


class TrackTooLongError(SourceError):
    user_message = "That track is too long."


class StageChannelError(TimmyError):
    user_message = "Stage channels aren't supported yet — use a voice channel."


class BotPermissionError(TimmyError):
    """The bot lacks a permission it needs in a channel; the sentence names the channel and each permission."""

    user_message = "I'm missing a permission I need in that channel."


class PlayingElsewhereError(TimmyError):
    """/play from another voice channel while the bot plays in one (BRIEF §5 same-channel rule)."""

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        super().__init__(f"I'm playing in <#{channel_id}> — join me there.")


# -- source failures the chain tells apart -----------------------------------------------------
# Each is a SourceError (or a TrackUnavailableError, where existing callers already expect one);
# timmybot.sources.failures maps each class to a reason code, an operator hint and a metric.


class SourceLoginRequiredError(SourceError):
    user_message = "That site wants me to sign in before it serves that track. Try another link or a search."


class AgeRestrictedError(TrackUnavailableError):
    user_message = "That track is age-restricted, so I can't play it."


class GeoBlockedError(TrackUnavailableError):
    user_message = "That track isn't available in the region I play from."


class StreamForbiddenError(SourceError):
    user_message = "The site refused to hand me the audio for that track (HTTP 403). Try again in a moment."


class SourceTimeoutError(SourceError):
    user_message = "The site took too long to answer. Please try again in a moment."


class SourceRestingError(SourceError):
    """Every source that could serve a request is skipped by its circuit breaker (cool-down)."""

    user_message = "That site keeps refusing me, so I'm giving it a few minutes' rest. Try a search instead."


class BotRestingError(TimmyError):
    """The daily gateway-identify budget is nearly spent: no new voice sessions until it resets."""

    def __init__(self, minutes: int) -> None:
        self.minutes = max(1, minutes)
        super().__init__(
            f"The bot is resting to stay within Discord's daily connection limit. Try again in {self.minutes} min."
        )


class SourceUnreachableError(SourceError):
    """DNS, connection or proxy failure on the way to the site (not the site refusing)."""

    user_message = "I can't reach that site right now. Please try again in a moment."


class SourceRateLimitedError(SourceError):
    """The site answered HTTP 429 (too many requests): it is throttling the bot, not refusing one track."""

    user_message = "That site is rate-limiting me right now. Try another link, or again in a few minutes."


class SourceServerError(SourceError):
    """The site answered with a 5xx status: it is broken or overloaded, whatever the track."""

    user_message = "That site is having trouble right now. Please try again in a moment."
