"""Typed settings, one object per process, read from ``TIMMYBOT_*`` environment variables.

Secrets default to empty, which turns their feature off (a missing bot token, OAuth secret or link
key is named by ``validate``); on AWS they come from SSM parameters named here, read once when first
needed. ``Settings.from_env()`` validates at start and names every problem at once.
docs/CONFIGURATION.md lists every setting; keep it in step with this file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from timmybot.sources.models import SourceSettings

PREFIX = "TIMMYBOT_"
SNOWFLAKE_RE = re.compile(r"^[1-9][0-9]{15,20}$")
LINK_KEY_MIN_LENGTH = 32  # characters of a random link key (32 of token_urlsafe's alphabet: 192 bits)

StoreBackend = Literal["sqlite", "dynamodb"]
LauncherKind = Literal["local", "ecs", "none"]
DispatcherKind = Literal["thread", "lambda", "inline"]
VaultBackend = Literal["local", "secretsmanager", "kms"]


class SettingsError(ValueError):
    """One or more settings are missing or invalid; the message names each."""


def is_snowflake(value: str) -> bool:
    """A Discord id: a positive 64-bit integer written in decimal (17–20 digits today)."""
    return bool(SNOWFLAKE_RE.match(value)) and int(value) < 2**64


@dataclass(frozen=True)
class Settings:
    # Discord application
    discord_public_key: str = ""  # hex Ed25519 public key of the application (not secret)
    discord_application_id: str = ""
    discord_bot_token: str = field(default="", repr=False)  # secret
    discord_bot_token_parameter: str = ""  # AWS: the SSM SecureString holding the bot token (read at cold start)
    oauth_parameter_prefix: str = ""  # AWS: SSM path prefix of the OAuth client secrets
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg"

    # Store
    store_backend: StoreBackend = "sqlite"
    sqlite_path: str = ".local/timmybot.sqlite3"
    dynamodb_table: str = "timmybot"
    aws_region: str = "us-east-1"
    aws_endpoint_url: str = ""  # moto server / local DynamoDB; empty = AWS

    # Allowlist and the refusal text
    allowlist_file: str = ""  # empty: the file shipped next to the Chalice app
    allowlist_extra: tuple[str, ...] = ()  # env override, comma-separated guild ids
    allow_all_guilds: bool = False  # self-deployers may open their own bot to every guild
    request_access_url: str = "https://github.com/timmybot/timmybot/issues/new?template=access.md"
    self_deploy_url: str = "https://github.com/timmybot/timmybot#self-deploy"
    not_authorized_text: str = "TimmyBot is invite-only and this server is not on its list yet."

    # Limits
    queue_cap: int = 500
    dedupe_ttl_s: int = 900
    max_body_bytes: int = 64 * 1024
    max_body_depth: int = 32  # deepest JSON nesting a request body may have (checked before parsing)
    signature_max_age_s: int = 300  # a signed timestamp older than this is refused (replays); 0 = never
    signature_max_future_s: int = 60  # ...and one further ahead of our clock than this

    # Rate limits (docs/SECURITY.md): "<count>/<seconds>" per user and per guild, kept in the store
    rate_play_user: str = "10/30"  # /play and the history's re-queue buttons, per user
    rate_play_guild: str = "30/30"  # /play per guild, all users together
    rate_personal_user: str = "6/60"  # /my-playlists, /liked-songs, /play-history, /recommendations...
    rate_link_user: str = "5/300"  # /link and /unlink (each calls Google or Spotify)
    rate_check_user: str = "12/60"  # /check-auth and the Check button (Google's token endpoint)
    rate_search_user: str = "8/30"  # /search, per user (its picks count against rate_play_user)
    rate_lyrics_user: str = "8/60"  # /lyrics, per user (each may call LRCLIB); its page buttons are free
    rate_autocomplete_user: str = "40/10"  # autocomplete: over it, no choices (never a sentence)

    # Control plane plumbing
    dispatcher: DispatcherKind = "thread"
    worker_function_name: str = ""
    launcher: LauncherKind = "local"
    ecs_cluster: str = ""
    ecs_task_definition: str = ""
    ecs_subnets: tuple[str, ...] = ()
    ecs_security_groups: tuple[str, ...] = ()
    ecs_use_spot: bool = False
    ecs_container_name: str = "voice_task"  # the task definition's container that gets the overrides
    dispatcher_threads: int = 4  # ThreadDispatcher pool size (local)
    worker_dedupe_ttl_s: int = 6 * 3600  # a finished /play job is remembered this long (Lambda's max event age)
    worker_claim_ttl_s: int = 150  # a job in progress holds its claim this long (past the worker's 120 s timeout)
    track_cache_ttl_s: int = 7 * 24 * 3600  # resolved track metadata (BRIEF §4.7)
    bot_user_id: str = ""  # empty: the application id (a bot's user id equals its application id)
    voice_task_command: tuple[str, ...] = (sys.executable, "-m", "voice_task")  # local launcher
    voice_task_log_dir: str = ""  # local launcher: one stdout/stderr file per guild here; empty = inherit

    # Voice task lifecycle
    lease_ttl_s: int = 60
    heartbeat_s: int = 15
    launching_ttl_s: int = 90
    idle_timeout_s: int = 300
    idle_timeout_min_s: int = 60  # the range /settings may choose an idle timeout from
    idle_timeout_max_s: int = 3600
    alone_timeout_s: int = 120
    voice_reconnect_deadline_s: float = 60.0  # how long the task keeps trying to get its voice connection back
    pause_after_failures: int = 3  # tracks failing in a row before the guild is paused
    play_now_interrupted: Literal["resume", "restart", "drop"] = "resume"  # the track "play now" cuts
    card_refresh_s: float = 15.0  # while playing, the now-playing card's progress bar is refreshed this often
    card_min_edit_s: float = 5.0  # and the card is edited at most once in this many seconds
    reaper_voice_cooldown_s: int = 900  # no relaunch this long after a task gave up on its voice connection
    wake_hints: Literal["udp", "sqs", "none"] = "udp"  # how controls tell the task to tick now
    wake_queue_prefix: str = "timmybot-wake-"  # sqs: the per-task queue's name prefix
    poll_max_s: float = 2.0  # with wake hints, the task polls this seldom while nothing changes
    strict_states: bool = False  # an impossible state change raises (tests) instead of being logged
    shard_count: int = 16
    identify_max_attempts: int = 6  # identifies without a READY in between before a voice task gives up
    identify_reserve_fraction: float = 0.1  # refuse launches once this share of the daily identifies is left
    reaper_recent_s: int = 3600  # the reaper relaunches only guilds active within this window
    tick_s: float = 0.25  # how often the task reconciles desired against applied state
    allow_24_7: bool = True  # the hosted operator may forbid 24/7 mode globally
    ffmpeg_path: str = ""  # empty: ffmpeg on PATH, else the binary shipped in imageio-ffmpeg

    # Sources (see timmybot.sources.SourceSettings)
    allow_local_media: bool = False  # tests and the demo only: never in a deployed config
    playlist_cap: int = 100
    list_page_cap: int = 10  # page requests one walk over an external list may make (Spotify, YouTube Data API)
    max_track_seconds: int = 3 * 3600
    source_chain: tuple[str, ...] = ("youtube", "ytmusic", "soundcloud")  # fallback order (docs/SOURCES.md)
    source_breaker_threshold: int = 5  # consecutive failures of one reason that open a source's breaker
    source_breaker_cooldown_s: float = 300.0  # how long an open breaker skips its source
    source_breaker_spread_tracks: int = 3  # per-track failures open a breaker only on this many distinct tracks
    source_breaker_spread_guilds: int = 2  # and this many distinct guilds (see docs/SOURCES.md for one guild)
    source_breaker_spread_window_s: float = 300.0  # within this window, in seconds
    source_secret_id: str = ""  # Secrets Manager id/ARN of the operator source secret (cookies, proxy...)
    source_secret_file: str = ""  # or a local JSON file with the same document (self-hosters)
    source_js_runtimes: tuple[str, ...] = ()  # yt-dlp JavaScript runtimes (deno, node...); empty: yt-dlp's default
    source_socket_timeout_s: float = 15.0
    # Network guard (docs/SECURITY.md): loopback host:port pairs it lets through; tests and the demo only
    net_guard_allow: tuple[str, ...] = ()

    # Accounts: the token vault and the OAuth clients (docs/ACCOUNTS.md)
    vault_backend: VaultBackend = "local"  # where user OAuth tokens live: local, secretsmanager or kms
    vault_sqlite_path: str = ""  # local vault database; empty = <data_dir>/vault.sqlite3
    vault_key_file: str = ""  # local vault Fernet key (created 0600 on first run); empty = <data_dir>/vault.key
    link_key: str = field(default="", repr=False)  # secret (api only): derives PKCE verifiers, seals pending codes
    link_key_parameter: str = ""  # AWS: the SSM SecureString holding link_key (read with the OAuth secrets)
    link_key_file: str = ""  # local link key (created 0600 on first run) when link_key is empty; <data_dir>/link.key
    token_table: str = field(default="timmybot-tokens")  # kms vault: the DynamoDB token table
    token_key_arn: str = ""  # kms vault: the tokens KMS key (envelope encryption, context user_id)
    user_secret_prefix: str = field(default="/timmybot/users/")  # secretsmanager vault: secret <prefix><user_id>/oauth
    google_client_id: str = ""  # Google OAuth client of type "TVs and Limited Input devices"
    google_client_secret: str = field(default="", repr=False)  # secret; AWS: SSM <prefix>google-client-secret
    google_device_url: str = "https://oauth2.googleapis.com/device/code"
    google_token_url: str = field(default="https://oauth2.googleapis.com/token")
    google_revoke_url: str = "https://oauth2.googleapis.com/revoke"
    spotify_client_id: str = ""  # Spotify app (PKCE: no secret needed)
    spotify_client_secret: str = field(default="", repr=False)  # optional; AWS: SSM <prefix>spotify-client-secret
    spotify_redirect_uri: str = ""  # the exact URI registered at Spotify (docs/ACCOUNTS.md)
    spotify_authorize_url: str = "https://accounts.spotify.com/authorize"
    spotify_token_url: str = field(default="https://accounts.spotify.com/api/token")
    spotify_link_url: str = "https://spotify.link"  # where spotify.link share codes are followed (the worker only)
    oauth_state_ttl_s: int = 900  # pending /link state and device codes live at most this long (15 min)
    oauth_timeout_s: float = 2.5  # HTTP timeout of one call to Google or Spotify (inside Discord's 3 s)

    # Personal music and Spotify links (docs/ACCOUNTS.md): metadata APIs, called by the worker only
    spotify_api_url: str = "https://api.spotify.com/v1"  # Spotify Web API base (links, libraries)
    youtube_api_url: str = "https://www.googleapis.com/youtube/v3"  # YouTube Data API v3 base (linked users)

    # /play autocomplete (docs/SOURCES.md): the user's and the guild's recent plays, then suggestions
    suggest_source: Literal["youtube", "off"] = "youtube"  # off: partly typed queries never leave the bot
    suggest_url: str = "https://suggestqueries.google.com/complete/search"  # YouTube's public suggestions (no key)
    suggest_language: str = "en"  # the endpoint's hl parameter (its answer's charset follows it)
    suggest_cache_s: int = 300  # a prefix's suggestions are kept this long in the store
    autocomplete_budget_ms: int = 800  # the whole answer, history and suggestions, within this (at most 800)

    # Lyrics (docs/ARCHITECTURE.md, "Lyrics"): LRCLIB, free and keyless; the worker and the voice task call it
    lyrics_api_url: str = "https://lrclib.net/api"  # LRCLIB's API base; the network guard allows this host
    lyrics_timeout_s: float = 5.0  # HTTP timeout of one LRCLIB call
    lyrics_cache_ttl_s: int = 7 * 24 * 3600  # found lyrics are kept this long in the store
    lyrics_miss_ttl_s: int = 24 * 3600  # "no lyrics found" is kept this long (LRCLIB grows)
    lyrics_duration_slack_s: float = 30.0  # a video may run this much longer than the song (intros)

    # Saved playlists (/playlist; docs/ARCHITECTURE.md, "Saved playlists")
    saved_playlists_max: int = 25  # playlists per owner (a user's personal ones, a server's)
    saved_playlist_tracks_max: int = 500  # tracks in one saved playlist
    playlist_import_max_bytes: int = 1024 * 1024  # an imported file's size, checked before and while reading
    attachment_host: str = "cdn.discordapp.com"  # imported files are fetched from this host only

    # Logging
    log_format: Literal["json", "text"] = "text"
    log_level: str = "INFO"
    data_dir: str = ".local"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every ``TIMMYBOT_<FIELD>`` variable; ``overrides`` win (tests, bootstrap)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            try:
                values[f.name] = _coerce(f.default, raw)
            except ValueError as exc:
                problems.append(f"{PREFIX}{f.name.upper()}: {exc}")
        values.update(overrides)
        if problems:
            raise SettingsError("; ".join(problems))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        problems: list[str] = []
        if self.discord_public_key and not re.fullmatch(r"[0-9a-fA-F]{64}", self.discord_public_key):
            problems.append("discord_public_key must be 64 hex characters")
        if self.store_backend not in ("sqlite", "dynamodb"):
            problems.append("store_backend must be sqlite or dynamodb")
        bad_ids = [g for g in self.allowlist_extra if not is_snowflake(g)]
        if bad_ids:
            problems.append(f"allowlist_extra has values that are not guild ids: {', '.join(bad_ids)}")
        if not 1 <= self.queue_cap <= 5000:
            problems.append("queue_cap must be between 1 and 5000")
        if not 1 <= self.list_page_cap <= 100:
            problems.append("list_page_cap must be between 1 and 100")
        if self.heartbeat_s * 2 > self.lease_ttl_s:
            problems.append("lease_ttl_s must be at least twice heartbeat_s")
        if self.dispatcher not in ("thread", "lambda", "inline"):
            problems.append("dispatcher must be thread, lambda or inline")
        if self.dispatcher == "lambda" and not self.worker_function_name:
            problems.append("worker_function_name is required with dispatcher=lambda")
        if self.launcher not in ("local", "ecs", "none"):
            problems.append("launcher must be local, ecs or none")
        if self.launcher == "ecs" and not (self.ecs_cluster and self.ecs_task_definition and self.ecs_subnets):
            problems.append("launcher=ecs needs ecs_cluster, ecs_task_definition and ecs_subnets")
        if self.launcher == "local" and not self.voice_task_command:
            problems.append("voice_task_command must not be empty with launcher=local")
        if self.bot_user_id and not is_snowflake(self.bot_user_id):
            problems.append("bot_user_id must be a Discord user id")
        if self.wake_hints not in ("udp", "sqs", "none"):
            problems.append("wake_hints must be udp, sqs or none")
        if not 1.0 <= self.card_min_edit_s <= self.card_refresh_s:
            problems.append("card_min_edit_s must be at least 1 and at most card_refresh_s")
        if self.play_now_interrupted not in ("resume", "restart", "drop"):
            problems.append("play_now_interrupted must be resume, restart or drop")
        if self.pause_after_failures < 1:
            problems.append("pause_after_failures must be at least 1")
        if self.dispatcher_threads < 1:
            problems.append("dispatcher_threads must be at least 1")
        if self.vault_backend not in ("local", "secretsmanager", "kms"):
            problems.append("vault_backend must be local, secretsmanager or kms")
        if self.vault_backend == "kms" and not self.token_key_arn:
            problems.append("vault_backend=kms needs token_key_arn")
        if self.spotify_redirect_uri and not _valid_redirect_uri(self.spotify_redirect_uri):
            problems.append(
                "spotify_redirect_uri must be https://... or http://127.0.0.1:<port>/... (Spotify refuses localhost)"
            )
        if self.link_key and len(self.link_key) < LINK_KEY_MIN_LENGTH:
            problems.append(f"link_key must be at least {LINK_KEY_MIN_LENGTH} characters (a random secret)")
        if self.signature_max_age_s < 0 or not 0 <= self.signature_max_future_s <= 300:
            problems.append("signature_max_age_s must be 0 or more, signature_max_future_s between 0 and 300")
        if self.signature_max_age_s and self.dedupe_ttl_s < self.signature_max_age_s + self.signature_max_future_s:
            problems.append(
                "dedupe_ttl_s must be at least signature_max_age_s + signature_max_future_s "
                "(a replay inside the signature window must still find its interaction id)"
            )
        if not 2 <= self.max_body_depth <= 256:
            problems.append("max_body_depth must be between 2 and 256")
        if self.suggest_source not in ("youtube", "off"):
            problems.append("suggest_source must be youtube or off")
        if not 50 <= self.autocomplete_budget_ms <= 800:
            problems.append("autocomplete_budget_ms must be between 50 and 800 (Discord waits 3 s; we promise 0.8)")
        if not 0 <= self.suggest_cache_s <= 3600:
            problems.append("suggest_cache_s must be between 0 and 3600")
        if not self.suggest_language.replace("-", "").isalnum() or len(self.suggest_language) > 10:
            problems.append("suggest_language must be a language code such as en or pt-BR")
        if not self.suggest_url.startswith(("https://", "http://")):
            problems.append("suggest_url must be an http(s) URL")
        for name in RATE_LIMIT_FIELDS:
            try:
                parse_rate(getattr(self, name))
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        if not self.lyrics_api_url.startswith(("https://", "http://")):
            problems.append("lyrics_api_url must be an http(s) URL")
        if not 0.5 <= self.lyrics_timeout_s <= 30:
            problems.append("lyrics_timeout_s must be between 0.5 and 30")
        if self.lyrics_cache_ttl_s < 60 or self.lyrics_miss_ttl_s < 60:
            problems.append("lyrics_cache_ttl_s and lyrics_miss_ttl_s must be at least 60")
        if not 0 <= self.lyrics_duration_slack_s <= 300:
            problems.append("lyrics_duration_slack_s must be between 0 and 300")
        if not 1 <= self.saved_playlists_max <= 100:
            problems.append("saved_playlists_max must be between 1 and 100")
        if not 1 <= self.saved_playlist_tracks_max <= 1000:
            problems.append("saved_playlist_tracks_max must be between 1 and 1000")
        if not 1024 <= self.playlist_import_max_bytes <= 8 * 1024 * 1024:
            problems.append("playlist_import_max_bytes must be between 1 KiB and 8 MiB")
        if not self.attachment_host or "/" in self.attachment_host:
            problems.append("attachment_host must be a host name (with an optional :port)")
        problems.extend(_net_guard_problems(self.net_guard_allow))
        if not 60 <= self.oauth_state_ttl_s <= 900:
            problems.append("oauth_state_ttl_s must be between 60 and 900 (15 min)")
        try:
            self.source_settings()
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise SettingsError("; ".join(problems))

    @property
    def bot_id(self) -> str:
        """The bot's user id: ``bot_user_id`` if set, else the application id."""
        return self.bot_user_id or self.discord_application_id

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def vault_database_path(self) -> Path:
        return Path(self.vault_sqlite_path) if self.vault_sqlite_path else self.data_path / "vault.sqlite3"

    @property
    def vault_key_path(self) -> Path:
        return Path(self.vault_key_file) if self.vault_key_file else self.data_path / "vault.key"

    @property
    def link_key_path(self) -> Path:
        return Path(self.link_key_file) if self.link_key_file else self.data_path / "link.key"

    def source_settings(self) -> SourceSettings:
        from timmybot.sources.models import SourceSettings  # noqa: PLC0415 - keep config import-light

        return SourceSettings(
            allow_local_media=self.allow_local_media,
            playlist_cap=self.playlist_cap,
            list_page_cap=self.list_page_cap,
            max_track_seconds=self.max_track_seconds,
            socket_timeout_s=self.source_socket_timeout_s,
            js_runtimes=self.source_js_runtimes,
            source_chain=self.source_chain,
            breaker_threshold=self.source_breaker_threshold,
            breaker_cooldown_s=self.source_breaker_cooldown_s,
            breaker_spread_tracks=self.source_breaker_spread_tracks,
            breaker_spread_guilds=self.source_breaker_spread_guilds,
            breaker_spread_window_s=self.source_breaker_spread_window_s,
            aws_region=self.aws_region,
            aws_endpoint_url=self.aws_endpoint_url,
            source_secret_id=self.source_secret_id,
            source_secret_file=self.source_secret_file,
            spotify_api_url=self.spotify_api_url,
            spotify_token_url=self.spotify_token_url,
            spotify_link_url=self.spotify_link_url,
            spotify_client_id=self.spotify_client_id,
            spotify_client_secret=self.spotify_client_secret,
        )


RATE_LIMIT_FIELDS = (
    "rate_play_user",
    "rate_play_guild",
    "rate_personal_user",
    "rate_link_user",
    "rate_check_user",
    "rate_search_user",
    "rate_lyrics_user",
    "rate_autocomplete_user",
)


def parse_rate(value: str) -> tuple[int, int]:
    """``"<count>/<seconds>"`` → (count, seconds); ``"off"`` → (0, 0), no limit."""
    text = value.strip().lower()
    if text in ("off", "0", ""):
        return 0, 0
    count, slash, seconds = text.partition("/")
    if not slash or not count.isdigit() or not seconds.isdigit() or int(count) < 1 or not 1 <= int(seconds) <= 86400:
        raise ValueError(f"expected <count>/<seconds> (e.g. 8/30) or off, got {value!r}")
    return int(count), int(seconds)


def _net_guard_problems(entries: tuple[str, ...]) -> list[str]:
    """Each ``net_guard_allow`` entry must be ``host:port`` (``[v6]:port``)."""
    if not entries:
        return []
    from timmybot.netguard.proxy import split_host_port  # noqa: PLC0415 - stdlib only, on validation

    problems: list[str] = []
    for entry in entries:
        try:
            split_host_port(entry)
        except ValueError as exc:
            problems.append(f"net_guard_allow: {exc}")
    return problems


def _valid_redirect_uri(uri: str) -> bool:
    """Spotify's rule: https, or plain http only on a loopback IP literal (never ``localhost``)."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    parts = urlsplit(uri)
    if parts.fragment or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1") and parts.port is not None


def _coerce(default: Any, raw: str) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"expected true/false, got {raw!r}")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
