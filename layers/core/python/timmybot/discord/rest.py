"""A small Discord REST client on urllib (no extra dependencies).

- The base URL comes from settings (``discord_api_base``), so the loopback emulator and REST
  proxies work like the real API.
- ``Authorization: Bot <token>`` on bot routes; interaction webhooks authenticate by their token
  in the path and get no Authorization header.
- 429: sleep ``retry_after`` and try again, a bounded number of times and never longer than
  ``max_retry_after_s`` per wait; other failures raise ``DiscordHTTPError`` with the HTTP status and
  Discord's JSON error code.
- Logs name the route template (``/webhooks/{app}/{token}/…``), never the token or the bot token.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from timmybot import __version__
from timmybot.discord.types import no_mentions, requester_ping

if TYPE_CHECKING:
    from timmybot.config import Settings

_log = logging.getLogger(__name__)

JSON = dict[str, Any]
USER_AGENT = f"DiscordBot (https://github.com/timmybot/timmybot, {__version__})"
UNKNOWN_VOICE_STATE = 10065
RETRYABLE_SERVER_STATUSES = frozenset({502, 503, 504})


class DiscordHTTPError(Exception):
    """Discord answered with an error (or could not be reached: status 0)."""

    def __init__(self, method: str, route: str, status: int, code: int | None = None, message: str = "") -> None:
        self.method = method
        self.route = route
        self.status = status
        self.code = code
        self.message = message
        detail = f" code {code}" if code is not None else ""
        super().__init__(f"{method} {route} -> HTTP {status}{detail}: {message}".rstrip(": "))


class DiscordRest:
    def __init__(
        self,
        *,
        token: str,
        api_base: str = "https://discord.com/api/v10",
        timeout_s: float = 10.0,
        max_attempts: int = 4,
        max_retry_after_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = USER_AGENT,
    ) -> None:
        self._token = token
        self._base = api_base.rstrip("/")
        self._timeout_s = timeout_s
        self._max_attempts = max(1, max_attempts)
        self._max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._user_agent = user_agent

    def __repr__(self) -> str:
        return f"DiscordRest(api_base={self._base!r})"

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> DiscordRest:
        return cls(token=settings.discord_bot_token, api_base=settings.discord_api_base, **kwargs)

    # ------------------------------------------------------------------ endpoints
    def bulk_overwrite_commands(
        self, application_id: str, commands: Sequence[Mapping[str, Any]], guild_id: str | None = None
    ) -> list[JSON]:
        """PUT the whole command set (global, or one guild's: guild commands update instantly)."""
        if guild_id:
            route = "/applications/{app}/guilds/{guild}/commands"
            path = f"/applications/{_seg(application_id)}/guilds/{_seg(guild_id)}/commands"
        else:
            route = "/applications/{app}/commands"
            path = f"/applications/{_seg(application_id)}/commands"
        result = self.request("PUT", path, route=route, body=list(commands))
        return list(result) if isinstance(result, list) else []

    def get_voice_state(self, guild_id: str, user_id: str) -> JSON | None:
        """The member's voice state, or None when they are not in a voice channel (10065)."""
        try:
            result = self.request(
                "GET",
                f"/guilds/{_seg(guild_id)}/voice-states/{_seg(user_id)}",
                route="/guilds/{guild}/voice-states/{user}",
            )
        except DiscordHTTPError as error:
            if error.status == 404 and error.code == UNKNOWN_VOICE_STATE:
                return None
            raise
        return _object(result)

    def edit_original(self, application_id: str, interaction_token: str, body: Mapping[str, Any]) -> JSON:
        """PATCH the original interaction response (valid for 15 minutes after the interaction)."""
        result = self.request(
            "PATCH",
            f"/webhooks/{_seg(application_id)}/{_seg(interaction_token)}/messages/@original",
            route="/webhooks/{app}/{token}/messages/@original",
            body=_no_pings(body),
            auth=False,
        )
        return _object(result)

    def edit_original_with_file(
        self, application_id: str, interaction_token: str, body: Mapping[str, Any], *, filename: str, data: bytes
    ) -> JSON:
        """PATCH the original response with one file attached (multipart: ``payload_json`` and
        ``files[0]``, which the body's ``attachments`` names as id 0)."""
        payload = {**_no_pings(body), "attachments": [{"id": "0", "filename": filename}]}
        boundary = "timmybot-" + uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="payload_json"\r\n'
            "Content-Type: application/json\r\n\r\n".encode(),
            json.dumps(payload).encode("utf-8"),
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="files[0]"; filename="{filename}"\r\n'
            "Content-Type: application/json\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
        result = self.request(
            "PATCH",
            f"/webhooks/{_seg(application_id)}/{_seg(interaction_token)}/messages/@original",
            route="/webhooks/{app}/{token}/messages/@original",
            encoded=(b"".join(parts), f"multipart/form-data; boundary={boundary}"),
            auth=False,
        )
        return _object(result)

    def create_message(self, channel_id: str, body: Mapping[str, Any]) -> JSON:
        result = self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/messages",
            route="/channels/{channel}/messages",
            body=_new_message(body),
        )
        return _object(result)

    def edit_message(self, channel_id: str, message_id: str, body: Mapping[str, Any]) -> JSON:
        result = self.request(
            "PATCH",
            f"/channels/{_seg(channel_id)}/messages/{_seg(message_id)}",
            route="/channels/{channel}/messages/{message}",
            body=_no_pings(body),
        )
        return _object(result)

    # ------------------------------------------------------------------ transport
    def request(
        self,
        method: str,
        path: str,
        *,
        route: str | None = None,
        body: Mapping[str, Any] | Sequence[Any] | None = None,
        auth: bool = True,
        encoded: tuple[bytes, str] | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON (None for 204). ``route`` is what logs show.
        ``encoded`` is a body already encoded, with its content type (a multipart upload)."""
        shown = route or path
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if encoded is not None:
            data, headers["Content-Type"] = encoded
        if auth:
            if not self._token:
                raise DiscordHTTPError(method, shown, 0, message="no bot token configured")
            headers["Authorization"] = f"Bot {self._token}"
        for attempt in range(1, self._max_attempts + 1):
            req = urllib.request.Request(self._base + path, data=data, headers=headers, method=method)  # noqa: S310
            try:
                with urllib.request.urlopen(req, timeout=self._timeout_s) as response:  # noqa: S310 - https/loopback base
                    raw = response.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as error:
                raw = error.read()
                payload = _decode(raw)
                wait = self._retry_wait(error, payload, attempt)
                if wait is None:
                    code = payload.get("code")
                    raise DiscordHTTPError(
                        method,
                        shown,
                        error.code,
                        code if isinstance(code, int) else None,
                        str(payload.get("message") or error.reason or ""),
                    ) from None
                _log.warning(
                    "%s %s -> HTTP %s; retrying in %.2f s (attempt %s/%s)",
                    method,
                    shown,
                    error.code,
                    wait,
                    attempt,
                    self._max_attempts,
                )
                self._sleep(wait)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                reason = getattr(error, "reason", error)
                raise DiscordHTTPError(method, shown, 0, message=f"unreachable: {reason}") from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _retry_wait(self, error: urllib.error.HTTPError, payload: JSON, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None to give up."""
        if attempt >= self._max_attempts:
            return None
        if error.code == 429:
            retry_after: object = payload.get("retry_after")
            if not isinstance(retry_after, int | float):
                try:
                    retry_after = float(str(error.headers.get("Retry-After", "1")))
                except ValueError:
                    retry_after = 1.0
            wait = max(0.0, float(retry_after))
            return wait if wait <= self._max_retry_after_s else None
        if error.code in RETRYABLE_SERVER_STATUSES:
            backoff: float = 0.25 * 2 ** (attempt - 1)
            return min(self._max_retry_after_s, backoff)
        return None


def _no_pings(body: Mapping[str, Any]) -> JSON:
    """Every message the bot writes, whoever built it, can ping nobody (see ``no_mentions``)."""
    return {**body, "allowed_mentions": no_mentions()}


def _new_message(body: Mapping[str, Any]) -> JSON:
    """A new channel message: no pings, but for the one exception ``guarded_mentions`` admits
    (an edit never pings, so edits keep ``_no_pings``)."""
    return {**body, "allowed_mentions": guarded_mentions(body)}


def guarded_mentions(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """The mention guard: ``no_mentions()``, except a body that asks for ``requester_ping(user)``
    and mentions that one user in its content (the requester told their track is playing)."""
    asked = body.get("allowed_mentions")
    if isinstance(asked, Mapping):
        users = asked.get("users")
        if isinstance(users, list) and len(users) == 1 and str(users[0]).isdigit():
            user = str(users[0])
            if asked == requester_ping(user) and f"<@{user}>" in str(body.get("content") or ""):
                return requester_ping(user)
    return no_mentions()


def _seg(value: str) -> str:
    """One path segment, percent-encoded (ids and tokens never add path structure)."""
    return quote(str(value), safe="")


def _decode(raw: bytes) -> JSON:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _object(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}
