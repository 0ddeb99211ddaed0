"""REST subset of Discord's API v10 served by the emulator.

Every JSON response carries exactly ``Content-Type: application/json`` (discord.py treats anything
else, e.g. aiohttp's ``; charset=utf-8``, as text). Bot routes check ``Authorization: Bot <token>``;
webhook routes (interaction tokens) need no auth, as on Discord. Unknown routes answer 404
``{"code": 0, "message": "404: Not Found"}``. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import discord_rules
from .hub import HUB_KEY, Hub, RateLimitFault
from .records import MessageRecord, RestRequest, WebhookRecord
from .state import JSON, Guild, message_json, snowflake

_log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"


class RestError(Exception):
    """An error answered as Discord's JSON error body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(status=status, body=json.dumps(data).encode(), headers=all_headers)


def error_response(status: int, code: int, message: str) -> web.Response:
    return json_response({"code": code, "message": message}, status=status)


def no_content() -> web.Response:
    return web.Response(status=204)


@dataclass
class Call:
    """What a route handler receives."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    uploads: tuple[Upload, ...] = ()  # a multipart request's files

    @property
    def json(self) -> JSON:
        return self.body if isinstance(self.body, dict) else {}


Handler = Callable[[Hub, Call], Awaitable[web.Response]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool = True
    spec: str | None = None  # the route's path in Discord's OpenAPI spec: its body is checked


_ROUTES: list[Route] = []


def route(method: str, template: str, *, auth: bool = True, spec: str | None = None) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``template`` (``{name}`` segments match one path segment)."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))

    def decorator(handler: Handler) -> Handler:
        _ROUTES.append(Route(method, re.compile(f"^{regex}$"), handler, auth, spec))
        return handler

    return decorator


# helpers ---------------------------------------------------------------------------------------
def _guild(hub: Hub, raw: str) -> Guild:
    guild = hub.guilds.get(int(raw)) if raw.isdigit() else None
    if guild is None:
        raise RestError(404, 10004, "Unknown Guild")
    return guild


def _user_id(hub: Hub, raw: str) -> int:
    return hub.bot_user.id if raw == "@me" else int(raw)


def _find_channel(hub: Hub, raw: str) -> tuple[Guild, int]:
    if raw.isdigit():
        channel_id = int(raw)
        for guild in hub.guilds.values():
            if channel_id in guild.channels:
                return guild, channel_id
    raise RestError(404, 10003, "Unknown Channel")


# identity --------------------------------------------------------------------------------------
@route("GET", "/users/@me")
async def get_me(hub: Hub, call: Call) -> web.Response:
    return json_response({**hub.bot_user.to_json(), "verified": True, "mfa_enabled": False})


@route("GET", "/users/{user}")
async def get_user(hub: Hub, call: Call) -> web.Response:
    user_id = int(call.params["user"])
    for guild in hub.guilds.values():
        if user_id in guild.members:
            return json_response(guild.members[user_id].user.to_json())
    raise RestError(404, 10013, "Unknown User")


@route("GET", "/oauth2/applications/@me")
async def get_application(hub: Hub, call: Call) -> web.Response:
    return json_response(hub.app.to_json())


@route("GET", "/gateway")
async def get_gateway(hub: Hub, call: Call) -> web.Response:
    return json_response({"url": hub.gateway_url})


@route("GET", "/gateway/bot")
async def get_gateway_bot(hub: Hub, call: Call) -> web.Response:
    return json_response(
        {
            "url": hub.gateway_url,
            "shards": hub.recommended_shards,
            "session_start_limit": hub.session_start_limit.to_json(),
        }
    )


# guilds, channels, members ---------------------------------------------------------------------
@route("GET", "/guilds/{guild}")
async def get_guild(hub: Hub, call: Call) -> web.Response:
    guild = _guild(hub, call.params["guild"])
    return json_response(guild.to_json(with_counts=call.query.get("with_counts") == "true"))


@route("GET", "/guilds/{guild}/roles")
async def get_roles(hub: Hub, call: Call) -> web.Response:
    guild = _guild(hub, call.params["guild"])
    return json_response([r.to_json() for r in guild.roles.values()])


@route("GET", "/guilds/{guild}/channels")
async def get_channels(hub: Hub, call: Call) -> web.Response:
    guild = _guild(hub, call.params["guild"])
    return json_response([c.to_json() for c in guild.channels.values()])


@route("GET", "/channels/{channel}")
async def get_channel(hub: Hub, call: Call) -> web.Response:
    guild, channel_id = _find_channel(hub, call.params["channel"])
    return json_response(guild.channels[channel_id].to_json())


@route("GET", "/guilds/{guild}/members/{user}")
async def get_member(hub: Hub, call: Call) -> web.Response:
    guild = _guild(hub, call.params["guild"])
    member = guild.members.get(_user_id(hub, call.params["user"]))
    if member is None:
        raise RestError(404, 10007, "Unknown Member")
    return json_response(member.to_json())


@route("GET", "/guilds/{guild}/voice-states/{user}")
async def get_voice_state(hub: Hub, call: Call) -> web.Response:
    guild = _guild(hub, call.params["guild"])
    state = guild.voice_states.get(_user_id(hub, call.params["user"]))
    if state is None or state.channel_id is None:
        raise RestError(404, 10065, "Unknown Voice State")
    return json_response(state.to_json())


# messages --------------------------------------------------------------------------------------
def _record_message(hub: Hub, action: str, channel_id: int, message_id: int, body: JSON) -> None:
    hub.records.messages.append(
        MessageRecord(
            time.monotonic(), action, channel_id, message_id, body.get("content"),
            list(body.get("embeds") or []), list(body.get("components") or []), body,
        )
    )  # fmt: skip


@route("POST", "/channels/{channel}/messages", spec="/channels/{channel_id}/messages")
async def create_message(hub: Hub, call: Call) -> web.Response:
    guild, channel_id = _find_channel(hub, call.params["channel"])
    message_id = snowflake()
    message = message_json(
        message_id=message_id, channel_id=channel_id, author=hub.bot_user, body=call.json, guild_id=guild.id
    )
    hub.channel_messages[channel_id][message_id] = message
    _record_message(hub, "create", channel_id, message_id, call.json)
    return json_response(message)


def _stored_message(hub: Hub, call: Call) -> tuple[int, int, JSON]:
    _, channel_id = _find_channel(hub, call.params["channel"])
    raw = call.params["message"]
    message = hub.channel_messages[channel_id].get(int(raw)) if raw.isdigit() else None
    if message is None:
        raise RestError(404, 10008, "Unknown Message")
    return channel_id, int(raw), message


@route("GET", "/channels/{channel}/messages/{message}")
async def get_message(hub: Hub, call: Call) -> web.Response:
    return json_response(_stored_message(hub, call)[2])


@route("PATCH", "/channels/{channel}/messages/{message}", spec="/channels/{channel_id}/messages/{message_id}")
async def edit_message(hub: Hub, call: Call) -> web.Response:
    channel_id, message_id, message = _stored_message(hub, call)
    message.update({k: v for k, v in call.json.items() if k in ("content", "embeds", "components", "flags")})
    message["edited_timestamp"] = message["timestamp"]
    _record_message(hub, "edit", channel_id, message_id, call.json)
    return json_response(message)


@route("DELETE", "/channels/{channel}/messages/{message}")
async def delete_message(hub: Hub, call: Call) -> web.Response:
    channel_id, message_id, _ = _stored_message(hub, call)
    del hub.channel_messages[channel_id][message_id]
    _record_message(hub, "delete", channel_id, message_id, {})
    return no_content()


# interaction webhooks --------------------------------------------------------------------------
def _record_webhook(hub: Hub, token: str, action: str, message_id: int | None, body: JSON) -> None:
    hub.records.webhooks.append(WebhookRecord(time.monotonic(), token, action, message_id, body))


def _webhook_message(hub: Hub, call: Call, key: int | str, *, create: bool, edited: bool) -> JSON:
    token = call.params["token"]
    stored = hub.webhook_messages[token]
    message = stored.get(key)
    if message is None:
        if not create:
            raise RestError(404, 10008, "Unknown Message")
        message = message_json(
            message_id=snowflake(), channel_id=0, author=hub.bot_user, body={}, webhook_id=hub.app.id
        )
        stored[key] = message
    message.update({k: v for k, v in call.json.items() if k in ("content", "embeds", "components", "flags")})
    if call.uploads:  # the files become the message's attachments, served back by ``uploads``
        attachments = []
        for upload in call.uploads:
            attachment_id = snowflake()
            url = f"https://cdn.discordapp.com/attachments/{message['channel_id']}/{attachment_id}/{upload.filename}"
            hub.records.uploads[url] = upload.data
            attachments.append({"id": str(attachment_id), "filename": upload.filename, "size": len(upload.data),
                                "url": url, "proxy_url": url})  # fmt: skip
        message["attachments"] = attachments
    if edited:
        message["edited_timestamp"] = message["timestamp"]
    return message


@route(
    "PATCH",
    "/webhooks/{app}/{token}/messages/@original",
    auth=False,
    spec="/webhooks/{webhook_id}/{webhook_token}/messages/@original",
)
async def edit_original(hub: Hub, call: Call) -> web.Response:
    message = _webhook_message(hub, call, "@original", create=True, edited=True)
    _record_webhook(hub, call.params["token"], "edit_original", int(message["id"]), call.json)
    return json_response(message)


@route("GET", "/webhooks/{app}/{token}/messages/@original", auth=False)
async def get_original(hub: Hub, call: Call) -> web.Response:
    stored = hub.webhook_messages[call.params["token"]].get("@original")
    _record_webhook(hub, call.params["token"], "get_original", None, {})
    if stored is None:
        raise RestError(404, 10008, "Unknown Message")
    return json_response(stored)


@route("DELETE", "/webhooks/{app}/{token}/messages/@original", auth=False)
async def delete_original(hub: Hub, call: Call) -> web.Response:
    hub.webhook_messages[call.params["token"]].pop("@original", None)
    _record_webhook(hub, call.params["token"], "delete_original", None, {})
    return no_content()


@route("POST", "/webhooks/{app}/{token}", auth=False, spec="/webhooks/{webhook_id}/{webhook_token}")
async def create_followup(hub: Hub, call: Call) -> web.Response:
    message_id = snowflake()
    message = message_json(
        message_id=message_id, channel_id=0, author=hub.bot_user, body=call.json, webhook_id=hub.app.id
    )
    hub.webhook_messages[call.params["token"]][message_id] = message
    _record_webhook(hub, call.params["token"], "followup", message_id, call.json)
    return json_response(message)


@route(
    "PATCH",
    "/webhooks/{app}/{token}/messages/{message}",
    auth=False,
    spec="/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
)
async def edit_followup(hub: Hub, call: Call) -> web.Response:
    raw = call.params["message"]
    message = _webhook_message(hub, call, int(raw) if raw.isdigit() else raw, create=False, edited=True)
    _record_webhook(hub, call.params["token"], "edit_followup", int(message["id"]), call.json)
    return json_response(message)


@route(
    "POST",
    "/interactions/{interaction}/{token}/callback",
    auth=False,
    spec="/interactions/{interaction_id}/{interaction_token}/callback",
)
async def interaction_callback(hub: Hub, call: Call) -> web.Response:
    body = call.json
    data = body.get("data")
    if body.get("type") in (4, 5, 7) and isinstance(data, dict):
        message = message_json(message_id=snowflake(), channel_id=0, author=hub.bot_user, body=data)
        hub.webhook_messages[call.params["token"]]["@original"] = message
    _record_webhook(hub, call.params["token"], "callback", None, body)
    return no_content()


# application commands --------------------------------------------------------------------------
def _put_commands(hub: Hub, call: Call, guild_id: int | None) -> web.Response:
    body = call.body if isinstance(call.body, list) else []
    echoed = [
        {"id": str(snowflake()), "application_id": str(hub.app.id), "version": str(snowflake()),
         "type": 1, **cmd, **({"guild_id": str(guild_id)} if guild_id else {})}
        for cmd in body
    ]  # fmt: skip
    hub.commands[guild_id] = echoed
    return json_response(echoed)


@route("PUT", "/applications/{app}/commands", spec="/applications/{application_id}/commands")
async def put_global_commands(hub: Hub, call: Call) -> web.Response:
    return _put_commands(hub, call, None)


@route(
    "PUT",
    "/applications/{app}/guilds/{guild}/commands",
    spec="/applications/{application_id}/guilds/{guild_id}/commands",
)
async def put_guild_commands(hub: Hub, call: Call) -> web.Response:
    return _put_commands(hub, call, int(call.params["guild"]))


@route("GET", "/applications/{app}/commands")
async def get_global_commands(hub: Hub, call: Call) -> web.Response:
    return json_response(hub.commands.get(None, []))


# dispatcher ------------------------------------------------------------------------------------
def _rate_limited(fault: RateLimitFault) -> web.Response:
    reset_at = time.time() + fault.retry_after
    body = {"message": "You are being rate limited.", "retry_after": fault.retry_after, "global": fault.is_global}
    headers = {
        "Retry-After": str(max(1, math.ceil(fault.retry_after))),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{reset_at:.3f}",
        "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
        "X-RateLimit-Bucket": "emulated-bucket",
        "X-RateLimit-Scope": "global" if fault.is_global else "user",
        # discord.py treats a 429 without Via as a Cloudflare ban.
        "Via": "1.1 google",
    }
    if fault.is_global:
        headers["X-RateLimit-Global"] = "true"
    return json_response(body, status=429, headers=headers)


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request."""

    field: str
    filename: str
    data: bytes


@dataclass(frozen=True)
class Body:
    value: Any
    files: tuple[tuple[str, int], ...] = ()  # multipart: (field name, bytes)
    uploads: tuple[Upload, ...] = ()


async def _read_body(request: web.Request) -> Body:
    if not request.can_read_body:
        return Body(None)
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        payload: Any = form.get("payload_json")
        if isinstance(payload, web.FileField):
            payload = payload.file.read()
        if isinstance(payload, bytes | bytearray):
            payload = payload.decode()
        uploads = tuple(Upload(name, part.filename or "", part.file.read()) for name, part in form.items()
                        if isinstance(part, web.FileField) and name != "payload_json")  # fmt: skip
        files = tuple((upload.field, len(upload.data)) for upload in uploads)
        return Body(json.loads(payload) if isinstance(payload, str) else None, files, uploads)
    raw = await request.read()
    if not raw:
        return Body(None)
    try:
        return Body(json.loads(raw))
    except ValueError:
        return Body(raw.decode(errors="replace"))


#: Discord's upload limit for a bot's request without boosts (all files together).
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024
MAX_FILES = 10
_FILE_FIELD = re.compile(r"files\[(\d+)\]")


def _file_problems(files: tuple[tuple[str, int], ...]) -> list[discord_rules.FieldError]:
    found = []
    if len(files) > MAX_FILES:
        found.append(discord_rules.FieldError(("files",), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer."))
    for name, _ in files:
        if not _FILE_FIELD.fullmatch(name):
            found.append(discord_rules.FieldError((name,), "UNKNOWN_FIELD", "Files go in files[n] fields."))
    if sum(size for _, size in files) > UPLOAD_LIMIT_BYTES:
        return [*found, discord_rules.FieldError(("files",), "FILE_TOO_LARGE", "Request entity too large.")]
    return found


def _attachment_problems(value: Any, uploads: tuple[Upload, ...]) -> list[discord_rules.FieldError]:
    """What Discord refuses of a multipart body's ``attachments``: an entry naming a new file
    (a small id, not a snowflake) that no ``files[n]`` part carries, and a part without a file name."""
    found = []
    fields = {upload.field for upload in uploads}
    listed = value.get("attachments") if isinstance(value, dict) else None
    for n, item in enumerate(listed if isinstance(listed, list) else ()):
        raw = item.get("id") if isinstance(item, dict) else None
        if isinstance(raw, int | str) and str(raw).isdigit() and len(str(raw)) < 10 and f"files[{raw}]" not in fields:
            found.append(discord_rules.FieldError(("attachments", str(n), "id"), "ATTACHMENT_NOT_FOUND",
                                                  "Unknown attachment: no files[n] part carries it."))  # fmt: skip
    for upload in uploads:
        if not upload.filename:
            found.append(discord_rules.FieldError((upload.field,), "BASE_TYPE_REQUIRED", "A file needs a filename."))
    return found


def _held_to_discords_rules(hub: Hub, route: Route, method: str, path: str, body: Body) -> web.Response | None:
    """Refuse what Discord refuses (400 / 50035); note a message that could ping. None: go on."""
    assert route.spec is not None
    label = f"{method} {route.spec}"
    pings = discord_rules.ping_problems(method, route.spec, body.value)
    if pings:
        hub.records.pings.append((label, body.value))
        discord_rules.record("could_ping", label, pings, body.value)
    problems = (
        discord_rules.request_problems(method, route.spec, body.value)
        + _file_problems(body.files)
        + _attachment_problems(body.value, body.uploads)
    )
    if not problems:
        return None
    _log.warning("REST: refusing %s %s: %s", method, path, "; ".join(str(p) for p in problems[:3]))
    hub.records.refused.append((label, body.value))
    discord_rules.record("refused", label, problems, body.value)
    return json_response(discord_rules.error_body(problems), status=400)


async def rest_handler(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB_KEY]
    arrived = time.monotonic()
    path = request.path[len(API_PREFIX) :] or "/"
    method = request.method
    received = await _read_body(request)
    body = received.value
    authorized = hub.check_bot_auth(request.headers.get("Authorization"))
    matched_route: Route | None = None
    params: dict[str, str] = {}
    for candidate in _ROUTES:
        if candidate.method == method and (match := candidate.pattern.match(path)):
            matched_route, params = candidate, match.groupdict()
            break

    delay = hub.faults.latency_for(method, path)
    if delay > 0:
        await asyncio.sleep(delay)

    fault = hub.faults.take_rate_limit(method, path)
    if fault is not None:
        response = _rate_limited(fault)
    elif matched_route is None:
        response = error_response(404, 0, "404: Not Found")
    elif matched_route.auth and not authorized:
        response = error_response(401, 0, "401: Unauthorized")
    else:
        refused = _held_to_discords_rules(hub, matched_route, method, path, received) if matched_route.spec else None
        call = Call(method, path, params, dict(request.query), body, received.uploads)
        try:
            response = refused or await matched_route.handler(hub, call)
        except RestError as exc:
            response = error_response(exc.status, exc.code, exc.message)
    if matched_route is None:
        _log.info("REST: unknown route %s %s", method, path)
    hub.records.rest.append(
        RestRequest(arrived, method, path, dict(request.query), body, response.status, authorized,
                    matched_route is not None)
    )  # fmt: skip
    return response
