"""/link, /check-auth, /unlink and /forget-me, and their buttons (logic in ``timmybot.accounts``).

Every answer is ephemeral: only the member who linked sees their code, link or report. The vault
and the OAuth clients are built on the first command whose handler names ``accounts``, never for
other commands. A YouTube link is a device code the user enters at Google, then a "Check" button
(or /check-auth); a Spotify link is a link button to Spotify's consent page, which sends the
browser back to ``GET /oauth/spotify/callback`` (a page naming the Discord account, with a confirm
button). Replies that carry a live link or a user code are not replayable: a Discord retry of
the interaction gets "already handled" from the dedupe record, which never holds them.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from chalicelib.commands.base import Choice, Command, CommandContext, Option
from chalicelib.replies import Reply
from timmybot import text
from timmybot.accounts.oauth.errors import (
    AccessDeniedError,
    AuthorizationPendingError,
    CodeRejectedError,
    ExpiredCodeError,
    NoPendingLinkError,
    SlowDownError,
    TooSoonError,
)
from timmybot.accounts.vault.base import Platform
from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import AuthCheckId, ForgetConfirmId
from timmybot.discord.types import ButtonStyle, ComponentPayload, ComponentType, OptionType
from timmybot.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from timmybot.accounts.linked import LinkedAccounts
    from timmybot.accounts.records import AccountStatus, UnlinkReport, YouTubeIdentity

_log = logging.getLogger(__name__)

GOOGLE_PERMISSIONS_URL = "https://myaccount.google.com/permissions"
SPOTIFY_APPS_URL = "https://www.spotify.com/account/apps/"
PLATFORM_OPTION = Option(
    "platform",
    "Which account",
    OptionType.STRING,
    choices=(Choice("YouTube", Platform.YOUTUBE.value), Choice("Spotify", Platform.SPOTIFY.value)),
)


def _platform(ctx: CommandContext) -> Platform:
    raw = ctx.str_option("platform")
    try:
        return Platform(raw)
    except ValueError:
        raise InvalidInputError("Choose `youtube` or `spotify`.") from None


# ---------------------------------------------------------------------------------------------- /link
def link(ctx: CommandContext, accounts: LinkedAccounts) -> Reply:
    platform = _platform(ctx)
    if platform in accounts.linked_platforms(ctx.user_id):
        return Reply.private(
            f"Your {platform.label} account is already linked. Run /unlink {platform.value} first to link another one."
        )
    if platform is Platform.YOUTUBE:
        authorization = accounts.start_google_link(ctx.user_id)
        minutes = max(1, math.floor((authorization.expires_at - ctx.now) / 60))
        return Reply.private(
            "To link YouTube (read-only: your playlists and liked videos):\n"
            f"1. Open <{authorization.verification_url}>\n"
            f"2. Enter the code **{authorization.user_code}** and approve TimmyBot\n"
            f"3. Press **Check** (or run /check-auth). The code works for {minutes} minutes.",
            components=_check_row(),
            replayable=False,
        )
    from timmybot.accounts.records import DiscordAccount  # noqa: PLC0415 - account commands only

    account = DiscordAccount(display_name=ctx.display_name or ctx.username, username=ctx.username)
    url = accounts.start_spotify_link(ctx.user_id, account)
    return Reply.private(
        "To link Spotify (read-only: your playlists, saved tracks and recently played), open the link below "
        "and approve TimmyBot, then confirm on the page it shows. The link is yours alone: it works once, "
        "for 15 minutes. Don't share it.",
        components=(_row(_link_button("Link Spotify", url)),),
        replayable=False,
    )


# ------------------------------------------------------------------------------- /check-auth + Check
def check_auth(ctx: CommandContext, accounts: LinkedAccounts) -> Reply:
    return _check(ctx, accounts, Reply.private)


def check_click(ctx: CommandContext, accounts: LinkedAccounts) -> Reply:
    """The "Check" button: the same check, editing the message that carries the button."""
    return _check(ctx, accounts, _update)


def _check(ctx: CommandContext, accounts: LinkedAccounts, make: Callable[..., Reply]) -> Reply:
    try:
        accounts.check_google_link(ctx.user_id)
    except (AuthorizationPendingError, SlowDownError, TooSoonError) as waiting:
        pending = accounts.pending_google(ctx.user_id)
        reminder = f"\nCode: **{pending.user_code}** at <{pending.verification_url}>" if pending else ""
        return make(waiting.user_message + reminder, components=_check_row(), replayable=not pending)
    except (AccessDeniedError, ExpiredCodeError, CodeRejectedError) as ended:
        return make(ended.user_message)
    except NoPendingLinkError as nothing:
        return make(_status_text(accounts.status(ctx.user_id), nothing.user_message))
    return make(_linked_text(accounts.youtube_identity(ctx.user_id)))


def _linked_text(identity: YouTubeIdentity) -> str:
    """ "YouTube linked", naming the Google account's channel where the Data API gave it."""
    after = " Try /my-playlists or /liked-songs. Run /unlink youtube to undo it."
    if not identity.known:
        return "YouTube linked!" + after
    if identity.channel_title is None:
        return "YouTube linked (this Google account has no YouTube channel, so I can't show its name)." + after
    return f"YouTube linked as **{text.quote(identity.channel_title, text.IN_SENTENCE)}**!" + after


def _status_text(status: AccountStatus, no_pending: str) -> str:
    if not status.linked and not status.spotify_pending:
        return no_pending
    lines = []
    for platform in Platform:
        if platform in status.linked:
            lines.append(f"{platform.label}: linked.")
        elif platform is Platform.SPOTIFY and status.spotify_pending:
            lines.append("Spotify: waiting for you to approve on Spotify's page (use the link from /link spotify).")
        else:
            lines.append(f"{platform.label}: not linked (/link {platform.value}).")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- /unlink
def unlink(ctx: CommandContext, accounts: LinkedAccounts) -> Reply:
    platform = _platform(ctx)
    return Reply.private(_unlink_text(accounts.unlink(ctx.user_id, platform)))


def _unlink_text(report: UnlinkReport) -> str:
    label = report.platform.label
    if not report.was_linked:
        if report.pending_cancelled:
            return f"Your {label} account wasn't linked yet; I cancelled the link you had started."
        return f"Your {label} account isn't linked, so there was nothing to remove."
    if report.platform is Platform.SPOTIFY:
        return (
            "Spotify unlinked: I deleted your tokens. Spotify doesn't let apps revoke their own access, "
            f"so also remove TimmyBot at <{SPOTIFY_APPS_URL}>."
        )
    if report.revoked:
        return "YouTube unlinked: I revoked TimmyBot's access at Google and deleted your tokens."
    return (
        "YouTube unlinked: I deleted your tokens, but Google didn't confirm the revocation. "
        f"Remove TimmyBot at <{GOOGLE_PERMISSIONS_URL}> to be sure."
    )


# ----------------------------------------------------------------------------------------- /forget-me
def forget_me(ctx: CommandContext) -> Reply:
    """Ask first: the button below does the deleting."""
    confirm: ComponentPayload = {
        "type": ComponentType.BUTTON,
        "style": ButtonStyle.DANGER,
        "label": "Delete my data",
        "custom_id": custom_ids.build(ForgetConfirmId()),
    }
    return Reply.private(
        "This deletes everything TimmyBot keeps about you: your linked YouTube and Spotify tokens (revoked where "
        "the platform allows it), your preferences, your play history, your personal saved playlists and any link "
        "you started. Songs you already queued stay in their queues; server playlists you created stay with their "
        "servers, without your name. This can't be undone.",
        components=(_row(confirm),),
    )


def forget_confirm(ctx: CommandContext, accounts: LinkedAccounts) -> Reply:
    report = accounts.forget_me(ctx.user_id)
    return _update(report.summary())


# -------------------------------------------------------------------------------------------- helpers
def _update(content: str, *, components: tuple[ComponentPayload, ...] = (), replayable: bool = True) -> Reply:
    return Reply.update(content, components=components, replayable=replayable)


def _check_row() -> tuple[ComponentPayload, ...]:
    check: ComponentPayload = {
        "type": ComponentType.BUTTON,
        "style": ButtonStyle.PRIMARY,
        "label": "Check",
        "custom_id": custom_ids.build(AuthCheckId(Platform.YOUTUBE.value)),
    }
    return (_row(check),)


def _link_button(label: str, url: str) -> ComponentPayload:
    return {"type": ComponentType.BUTTON, "style": ButtonStyle.LINK, "label": label, "url": url}


def _row(*buttons: ComponentPayload) -> ComponentPayload:
    return {"type": ComponentType.ACTION_ROW, "components": list(buttons)}


COMMANDS: tuple[Command, ...] = (
    Command(
        "link",
        "Link your YouTube or Spotify account (read-only) for your playlists and likes.",
        link,
        (PLATFORM_OPTION,),
        rate="link",
    ),
    Command("check-auth", "Check whether Google has approved your YouTube link.", check_auth, rate="check"),
    Command(
        "unlink",
        "Unlink your YouTube or Spotify account and delete its tokens.",
        unlink,
        (PLATFORM_OPTION,),
        rate="link",
    ),
    Command("forget-me", "Delete everything TimmyBot keeps about you (asks first).", forget_me),
)
