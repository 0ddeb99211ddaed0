"""What can go wrong while linking an account, each with the sentence the user reads."""

from __future__ import annotations

from timmybot.errors import TimmyError


class LinkError(TimmyError):
    """Base for account-linking errors."""

    user_message = "Linking didn't work. Please try again."


class ProviderUnavailableError(LinkError):
    """The provider could not be reached, or answered something that is not OAuth JSON."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        super().__init__(f"I couldn't reach {provider} just now. Please try again in a moment.")


class NotConfiguredError(LinkError):
    def __init__(self, label: str) -> None:
        super().__init__(f"{label} linking isn't set up on this bot yet (its operator has to add the OAuth app).")


# -- Google device flow (RFC 8628 §3.5) -----------------------------------------------------------
class AuthorizationPendingError(LinkError):
    user_message = (
        "I'm still waiting for you to approve on Google's page. Enter the code there, then press Check again."
    )


class SlowDownError(LinkError):
    def __init__(self, interval_s: int) -> None:
        self.interval_s = interval_s
        super().__init__(
            f"Google asked me to check less often. Wait {interval_s} seconds after approving, then press Check again."
        )


class AccessDeniedError(LinkError):
    user_message = "You declined access on Google's page, so YouTube isn't linked. Run /link youtube to try again."


class ExpiredCodeError(LinkError):
    user_message = "That code expired before it was approved. Run /link youtube for a new one."


class NoPendingLinkError(LinkError):
    user_message = "There's no YouTube link waiting for approval. Run /link youtube first."


class PendingLinkUnreadableError(NoPendingLinkError):
    """The pending record's sealed device code does not open (the link key changed since /link)."""

    user_message = (
        "That YouTube link was started before this bot's keys changed, so it can't finish. Run /link youtube again."
    )


class TooSoonError(LinkError):
    def __init__(self, wait_s: int) -> None:
        self.wait_s = wait_s
        super().__init__(
            f"Not yet: Google wants {wait_s} more second{'s' if wait_s != 1 else ''} between checks. "
            "Approve on Google's page, then press Check again."
        )


# -- Spotify authorization code + PKCE --------------------------------------------------------------
class StateError(LinkError):
    """The callback's ``state`` is unknown, expired, already used or superseded."""

    user_message = (
        "This Spotify link is not valid anymore (links work once, for 15 minutes). Run /link spotify in Discord again."
    )


class StateUsedError(StateError):
    user_message = "This Spotify link was already used. If Spotify isn't linked yet, run /link spotify again."


class StateSupersededError(StateError):
    user_message = "You started a newer Spotify link since this one. Use the newest /link spotify message."


class ConfirmRefusedError(StateError):
    """The confirm POST carried no token, a token of another link or page, or a malformed form."""

    user_message = (
        "This confirmation isn't valid, so nothing was linked. Use the Confirm button on the page Spotify sent "
        "you back to, or run /link spotify in Discord again."
    )


class ConfirmExpiredError(StateError):
    """The confirm came after the page's deadline."""

    user_message = "That took too long: run /link spotify again"


class CallbackDeniedError(LinkError):
    user_message = "Spotify access was not granted, so Spotify isn't linked. Run /link spotify in Discord to try again."


class CodeRejectedError(LinkError):
    def __init__(self, label: str, command: str) -> None:
        super().__init__(f"{label} did not accept that approval (it may have expired). Run {command} again.")


# -- using a link ------------------------------------------------------------------------------------
class LinkRevokedError(LinkError):
    def __init__(self, label: str, command: str) -> None:
        super().__init__(f"Your {label} link was revoked or has expired, so I removed it. Run {command} to link again.")
