"""What the accounts service answers with: plain, frozen records (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from timmybot.accounts.vault.base import Platform

CONFIRM_WINDOW_S = 300  # the callback page's confirm button works this long ("Confirm within 5 minutes")


@dataclass(frozen=True)
class DiscordAccount:
    """The Discord account a Spotify link will be bound to, as the confirm page names it."""

    display_name: str  # global_name, else the username
    username: str  # the unique username (shown as @username)


@dataclass(frozen=True)
class SpotifyReview:
    """The callback GET's answer: whose link this is, and what the confirm form carries."""

    account: DiscordAccount
    sealed_state: str = field(repr=False)  # the page's hidden field: the state, sealed for the form only
    confirm_token: str = field(repr=False)  # single use; the store keeps its HMAC only
    confirm_by: float
    confirm_within_s: float = CONFIRM_WINDOW_S


@dataclass(frozen=True)
class YouTubeIdentity:
    """Which Google account a YouTube link reached, as far as the Data API says."""

    known: bool  # False: the lookup failed (the link itself stands)
    channel_title: str | None = None  # None with known=True: that Google account has no YouTube channel


@dataclass(frozen=True)
class PendingDevice:
    user_code: str
    verification_url: str
    interval_s: int
    expires_at: float


@dataclass(frozen=True)
class AccountStatus:
    linked: tuple[Platform, ...]
    youtube_pending: PendingDevice | None
    spotify_pending: bool


@dataclass(frozen=True)
class UnlinkReport:
    platform: Platform
    was_linked: bool
    revoked: bool | None  # None: the provider has no revocation (Spotify) or nothing was linked
    pending_cancelled: bool


@dataclass(frozen=True)
class ForgetReport:
    tokens_deleted: tuple[Platform, ...]
    revoked: tuple[Platform, ...]
    revoke_failed: tuple[Platform, ...]
    records_deleted: tuple[str, ...]  # labels from USER_RECORDS
    pending_deleted: tuple[str, ...]  # "YouTube link in progress", ...
    playlists_deleted: int = 0  # their personal saved playlists
    server_playlists_kept: int = 0  # server playlists they created: kept, without their id

    @property
    def nothing(self) -> bool:
        return not (
            self.tokens_deleted
            or self.records_deleted
            or self.pending_deleted
            or self.playlists_deleted
            or self.server_playlists_kept
        )

    def summary(self) -> str:
        if self.nothing:
            return "I had nothing stored about you, so there was nothing to delete."
        lines = ["Done. I deleted everything I kept about you:"]
        for platform in self.tokens_deleted:
            if platform in self.revoked:
                note = "access revoked at Google"
            elif platform in self.revoke_failed:
                note = (
                    "Google didn't confirm the revocation: remove TimmyBot at https://myaccount.google.com/permissions"
                )
            else:
                note = "Spotify can't revoke apps' access: remove TimmyBot at https://www.spotify.com/account/apps/"
            lines.append(f"• {platform.label} tokens ({note})")
        lines.extend(f"• your {label}" for label in self.records_deleted)
        lines.extend(f"• the {label}" for label in self.pending_deleted)
        if self.playlists_deleted:
            lines.append(
                f"• your {self.playlists_deleted} personal saved playlist{'s' if self.playlists_deleted != 1 else ''}"
            )
        if self.server_playlists_kept:
            lines.append(
                f"Server playlists you created ({self.server_playlists_kept}) stay for their servers, "
                "without your name on them."
            )
        return "\n".join(lines)
