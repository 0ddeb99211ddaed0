"""``POST /interactions``: verify → size/JSON checks → PING → allowlist → dedupe → route.

Order matters: nothing (no store, no log of the body, no outbound call) happens before the
signature holds, and the store is not touched before the allowlist says yes. Every answer after
verification is a 200 with a Discord response, errors included: Discord shows a non-200 as
"This interaction failed".
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import commands
from chalicelib.commands.base import BoundHandler, CommandContext, OptionValue
from chalicelib.commands.play import QUERY_MAX_LENGTH
from chalicelib.replies import (
    PONG,
    Reply,
    already_handled_reply,
    already_working_reply,
    error_reply,
    generic_error_reply,
    not_authorized_reply,
)
from chalicelib.services import Services
from chalicelib.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from timmybot import idempotency, ratelimit
from timmybot.config import is_snowflake
from timmybot.discord import custom_ids
from timmybot.discord.types import InteractionType, OptionType, Permission, ResponsePayload
from timmybot.errors import InvalidInputError, TimmyError
from timmybot.store.base import Store
from timmybot.text import UNREADABLE, is_encodable, loggable

_log = logging.getLogger(__name__)

ROUTED_TYPES = frozenset(
    {
        InteractionType.APPLICATION_COMMAND,
        InteractionType.MESSAGE_COMPONENT,
        InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE,
        InteractionType.MODAL_SUBMIT,
    }
)
MAX_ID_LENGTH = 32
MAX_SELECT_VALUES = 25  # Discord's limit of options in a select menu
MAX_VALUE_LENGTH = 100
SUB_COMMAND, SUB_COMMAND_GROUP = int(OptionType.SUB_COMMAND), int(OptionType.SUB_COMMAND_GROUP)
UNKNOWN = "unknown"
UNKNOWN_KIND_TEXT = "I can't handle that kind of interaction yet."


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: Mapping[str, Any]


UNAUTHORIZED = HttpResult(401, {"error": "invalid request signature"})


def handle_interaction(services: Services, headers: Mapping[str, str], raw_body: bytes | str) -> HttpResult:
    if isinstance(raw_body, str):  # Chalice hands bytes; keep the exact bytes Discord signed either way
        raw_body = raw_body.encode("utf-8", "surrogatepass")
    if len(raw_body) > services.settings.max_body_bytes:  # before hashing it: nothing is read either way
        return HttpResult(413, {"error": "request body too large"})
    lowered = {str(key).lower(): value for key, value in headers.items()}
    if not services.verifier.verify(
        lowered.get(SIGNATURE_HEADER.lower()), lowered.get(TIMESTAMP_HEADER.lower()), raw_body
    ):
        return UNAUTHORIZED
    if json_depth(raw_body) > services.settings.max_body_depth:
        return HttpResult(400, {"error": "body is nested too deeply"})
    try:
        payload = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return HttpResult(400, {"error": "body is not JSON"})
    if not isinstance(payload, dict):
        return HttpResult(400, {"error": "body is not a JSON object"})
    kind = payload.get("type")
    if not isinstance(kind, int) or isinstance(kind, bool):
        return HttpResult(400, {"error": "interaction type is not a number"})
    if kind == InteractionType.PING:
        return HttpResult(200, PONG)
    if kind not in ROUTED_TYPES:
        # A kind Discord added after this code was written: answer it as Discord expects (a 400
        # would show "This interaction failed"), with a sentence, and touch nothing.
        _log.info("interaction of unknown type %s answered with a sentence", kind)
        return HttpResult(200, Reply.private(UNKNOWN_KIND_TEXT).to_response())
    interaction_id = payload.get("id")
    if not isinstance(interaction_id, str) or not interaction_id.isdigit() or len(interaction_id) > MAX_ID_LENGTH:
        return HttpResult(400, {"error": "missing interaction id"})
    return HttpResult(200, _respond(services, InteractionType(kind), interaction_id, payload))


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deeply the JSON text ``raw`` nests, read without parsing it (the parser recurses, so a
    body nested a few thousand deep would exhaust the stack before any check could run).

    Strings are removed first, so brackets inside them do not count; what is left is only brackets."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _respond(
    services: Services, kind: InteractionType, interaction_id: str, payload: dict[str, Any]
) -> ResponsePayload:
    started = time.perf_counter()
    guild_id = _snowflake(payload.get("guild_id"))  # anything else is no guild: refused like a DM
    user_id = _user_id(payload)
    name = _metric_name(kind, payload)
    obs = services.observability
    obs.start(interaction_id=interaction_id, guild_id=guild_id, user_id=user_id, command=name)
    failed = False
    try:
        if not services.allowlist.allows(guild_id):
            _log.info("refused interaction %s from guild %s (not on the allowlist)", interaction_id, loggable(guild_id))
            if kind is InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE:
                return Reply.autocomplete().to_response()
            return not_authorized_reply(services.settings).to_response()
        if kind is InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE:
            return _autocomplete(services, user_id, guild_id, payload)
        response, failed = _deduplicated(services, interaction_id, kind, payload)
        return response
    except Exception:
        failed = True
        _log.exception("interaction %s (%s) failed outside its handler", interaction_id, name)
        return generic_error_reply().to_response()
    finally:
        obs.finish(command=name, latency_ms=(time.perf_counter() - started) * 1000, error=failed)


def _autocomplete(
    services: Services, user_id: str | None, guild_id: str | None, payload: Mapping[str, Any]
) -> ResponsePayload:
    """Choices for a partly typed option: none when over the (higher) autocomplete limit, never a
    sentence (Discord shows nothing but choices there). /play's query is the one option that
    offers them (``timmybot.autocomplete``: recent plays, then suggestions, within the budget)."""
    limits = ratelimit.command_limits(services.settings, "autocomplete", user_id=user_id or "", guild_id="")
    try:
        ratelimit.check(services.store, limits, now=time.time())
    except ratelimit.RateLimitedError:
        return Reply.autocomplete().to_response()
    if user_id is not None and guild_id is not None and (named := _focused_playlist(payload)) is not None:
        from chalicelib.commands.playlists import name_choices  # noqa: PLC0415 - store reads only

        try:
            found = name_choices(services.store, services.settings, user_id=user_id, guild_id=guild_id, typed=named)
        except Exception:
            _log.warning("playlist name autocomplete failed", exc_info=True)
            found = []
        return Reply.autocomplete(tuple(dict(c) for c in found)).to_response()
    typed = _focused(payload, command="play", option="query")
    if typed is None or user_id is None or guild_id is None:
        return Reply.autocomplete().to_response()
    from timmybot import autocomplete  # noqa: PLC0415 - only autocomplete pays for it
    from timmybot.sources.suggestions import suggestion_source  # noqa: PLC0415

    settings = services.settings
    choices = autocomplete.play_choices(
        typed,
        user_id=user_id,
        guild_id=guild_id,
        store=services.store,
        suggester=suggestion_source(settings),
        budget_s=settings.autocomplete_budget_ms / 1000,
        cache_ttl_s=settings.suggest_cache_s,
        query_max=QUERY_MAX_LENGTH,
    )
    return Reply.autocomplete(autocomplete.choices_payload(choices)).to_response()


def _focused(payload: Mapping[str, Any], *, command: str, option: str) -> str | None:
    """The text typed so far in ``command``'s focused ``option``; None for any other focus."""
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("name") != command:
        return None
    for item in data.get("options") or ():
        if isinstance(item, dict) and item.get("focused") is True and item.get("name") == option:
            value = item.get("value")
            return value[:PARTIAL_MAX] if isinstance(value, str) else None
    return None


def _focused_playlist(payload: Mapping[str, Any]) -> str | None:
    """The text typed so far in a /playlist subcommand's focused ``name``; None for any other focus."""
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("name") != "playlist":
        return None
    subcommands = data.get("options")
    if not isinstance(subcommands, list) or len(subcommands) != 1 or not isinstance(subcommands[0], dict):
        return None
    for item in subcommands[0].get("options") or ():
        if isinstance(item, dict) and item.get("focused") is True and item.get("name") == "name":
            value = item.get("value")
            return value[:PARTIAL_MAX] if isinstance(value, str) else None
    return None


PARTIAL_MAX = 200  # Discord sends at most the option's max_length; anything longer is cut


def _deduplicated(
    services: Services, interaction_id: str, kind: InteractionType, payload: dict[str, Any]
) -> tuple[ResponsePayload, bool]:
    """The first delivery is handled and its answer saved; a repeat gets the saved answer
    (``timmybot.idempotency.run_once`` on the interaction id), or "still working" while the first runs.

    A reply that is not ``replayable`` (it carries a live link or code) is never saved: the record
    gets "already handled, run /link again" instead, so the store holds no usable link."""
    ttl_s = services.settings.dedupe_ttl_s

    def handle() -> tuple[Reply, bool]:
        return _dispatch(services, services.store, interaction_id, kind, payload)

    def replay(handled: tuple[Reply, bool]) -> str:
        reply = handled[0]
        return json.dumps(reply.to_response() if reply.replayable else already_handled_reply().to_response())

    outcome = idempotency.run_once(services.store, interaction_id, handle, save=replay, claim_ttl_s=ttl_s, ttl_s=ttl_s)
    if isinstance(outcome, idempotency.Repeat):
        _log.info(
            "interaction %s repeated; answering %s", interaction_id, "as before" if outcome.saved else "still working"
        )
        response: ResponsePayload = (
            json.loads(outcome.saved) if outcome.saved else already_working_reply().to_response()
        )
        return response, False
    reply, failed = outcome.value
    return reply.to_response(), failed


def _dispatch(
    services: Services, store: Store, interaction_id: str, kind: InteractionType, payload: dict[str, Any]
) -> tuple[Reply, bool]:
    """Run the handler; domain errors become their sentence, anything else a generic error."""
    route = UNKNOWN
    try:
        route, handler, ctx = _route(services, interaction_id, kind, payload)
        bucket = commands.rate_bucket(route)
        if bucket is not None:
            ratelimit.check(
                store,
                ratelimit.command_limits(services.settings, bucket, user_id=ctx.user_id, guild_id=ctx.guild_id),
                now=ctx.now,
            )
        return handler(ctx, services), False
    except TimmyError as error:
        _log.info("interaction %s (%s): %s", interaction_id, route, type(error).__name__)
        return error_reply(error), False
    except Exception:
        _log.exception("handler failed for interaction %s (%s)", interaction_id, route)
        return generic_error_reply(), True


def _route(
    services: Services, interaction_id: str, kind: InteractionType, payload: dict[str, Any]
) -> tuple[str, BoundHandler, CommandContext]:
    data = payload.get("data")
    if not isinstance(data, dict):
        raise InvalidInputError("That interaction carried no data.")
    if not _user_id(payload):
        raise InvalidInputError("That interaction carried no user.")
    custom_id: custom_ids.CustomId | None = None
    options: dict[str, OptionValue] = {}
    subcommand = ""
    if kind is InteractionType.APPLICATION_COMMAND:
        name = data.get("name")
        command = commands.BY_NAME.get(name) if isinstance(name, str) else None
        if command is None:
            raise InvalidInputError("I don't know that command (it may have been removed). Try again in a minute.")
        route, handler = command.name, command.bound
        subcommand, options = _subcommand(data.get("options"))
    elif kind is InteractionType.MESSAGE_COMPONENT:
        custom_id = custom_ids.parse(data.get("custom_id"))
        route, handler = commands.component_route(custom_id)
    else:  # MODAL_SUBMIT: no form exists yet, so any custom id here is forged or stale
        custom_ids.parse(data.get("custom_id"))
        raise custom_ids.InvalidCustomIdError()
    ctx = CommandContext(
        interaction_id=interaction_id,
        application_id=_opt_str(payload.get("application_id")) or services.settings.discord_application_id,
        kind=kind,
        name=route,
        guild_id=_snowflake(payload.get("guild_id")) or "",
        channel_id=_snowflake(payload.get("channel_id")),
        user_id=_user_id(payload) or "",
        username=_user_field(payload, "username"),
        display_name=_user_field(payload, "global_name") or _user_field(payload, "username"),
        settings=services.settings,
        now=time.time(),
        roles=_roles(payload),
        permissions=Permission(_int_bits(_member(payload).get("permissions"))),
        options=options,
        subcommand=subcommand,
        custom_id=custom_id,
        values=_values(data.get("values")) if kind is InteractionType.MESSAGE_COMPONENT else (),
        token=_opt_str(payload.get("token")) or "",
        app_permissions=_int_bits(payload.get("app_permissions")),
        locale=_opt_str(payload.get("locale")),
        attachments=_attachments(data.get("resolved")) if kind is InteractionType.APPLICATION_COMMAND else {},
    )
    return route, handler, ctx


def _attachments(resolved: object) -> dict[str, dict[str, str | int]]:
    """A command's resolved attachments by id, each reduced to its url, filename and size (untrusted)."""
    found = resolved.get("attachments") if isinstance(resolved, dict) else None
    if not isinstance(found, dict):
        return {}
    out: dict[str, dict[str, str | int]] = {}
    for key, item in list(found.items())[:10]:
        if not isinstance(key, str) or not isinstance(item, dict):
            continue
        size = item.get("size")
        out[key] = {
            "url": item["url"] if isinstance(item.get("url"), str) else "",
            "filename": item["filename"] if isinstance(item.get("filename"), str) else "",
            "size": size if isinstance(size, int) and not isinstance(size, bool) else -1,
        }
    return out


def _subcommand(raw: object) -> tuple[str, dict[str, OptionValue]]:
    """The chosen subcommand ("dj only": a group's name first) and its options; a flat command's
    options with no subcommand. Discord nests at most two levels (a group, then a subcommand)."""
    path: list[str] = []
    for _ in range(2):
        if not isinstance(raw, list) or len(raw) != 1:
            break
        (item,) = raw
        if not isinstance(item, dict) or item.get("type") not in (SUB_COMMAND, SUB_COMMAND_GROUP):
            break
        name = item.get("name")
        if not isinstance(name, str):
            break
        path.append(name)
        raw = item.get("options")
    return " ".join(path), _options(raw)


def _options(raw: object) -> dict[str, OptionValue]:
    if not isinstance(raw, list):
        return {}
    options: dict[str, OptionValue] = {}
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            value = item.get("value")
            if isinstance(value, str) and not is_encodable(value):
                raise InvalidInputError(UNREADABLE)
            if isinstance(value, str | int | float | bool):
                options[item["name"]] = value
    return options


def _values(raw: object) -> tuple[str, ...]:
    """A select menu's values: at most 25 strings of at most 100 characters, else none at all."""
    if not isinstance(raw, list) or len(raw) > MAX_SELECT_VALUES:
        return ()
    if not all(isinstance(value, str) and len(value) <= MAX_VALUE_LENGTH for value in raw):
        return ()
    return tuple(raw)


def _metric_name(kind: InteractionType, payload: dict[str, Any]) -> str:
    """A bounded name for logs and the metrics dimension (never free text from the payload)."""
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    if kind is InteractionType.APPLICATION_COMMAND:
        name = data.get("name")
        return name if isinstance(name, str) and name in commands.BY_NAME else UNKNOWN
    if kind is InteractionType.MESSAGE_COMPONENT:
        try:
            return commands.component_route_name(custom_ids.parse(data.get("custom_id")))
        except custom_ids.InvalidCustomIdError:
            return "component.invalid"
    if kind is InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE:
        return "autocomplete"
    return "modal"


def _member(payload: dict[str, Any]) -> dict[str, Any]:
    member = payload.get("member")
    return member if isinstance(member, dict) else {}


def _user_id(payload: dict[str, Any]) -> str | None:
    user = _member(payload).get("user") or payload.get("user")
    return _snowflake(user.get("id")) if isinstance(user, dict) else None


def _snowflake(value: object) -> str | None:
    """A Discord id (a decimal string of a 64-bit number), else None: ids end up in store keys."""
    return value if isinstance(value, str) and is_snowflake(value) else None


def _user_field(payload: dict[str, Any], name: str) -> str:
    """A short text field of the acting user (``username``, ``global_name``), or ""."""
    user = _member(payload).get("user") or payload.get("user")
    value = user.get(name) if isinstance(user, dict) else None
    return value if isinstance(value, str) and len(value) <= MAX_VALUE_LENGTH else ""


def _roles(payload: dict[str, Any]) -> frozenset[str]:
    roles = _member(payload).get("roles")
    return frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset()


def _int_bits(value: object) -> int:
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return int(value)
    return 0


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
