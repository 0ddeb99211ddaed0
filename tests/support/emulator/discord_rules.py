"""What Discord refuses in a request body, so that tests fail where Discord would.

Three layers, each able to refuse on its own:
1. **Discord's OpenAPI spec** (``tests/support/discord_spec/``, cut by
   ``scripts/refresh_discord_spec.py``), made stricter on purpose: its object schemas almost never
   forbid unknown keys, so ``{"allowed_mention": …}`` would validate and Discord would silently
   ignore it. Here every object with listed properties refuses any other key, which also holds a
   callback's ``data`` to the fields of its callback type.
2. **Documented limits the spec leaves out** (``_limits``): content ≤ 2000 code points, the 6000
   character budget of a message's embeds, unique component custom ids, autocomplete choice values,
   command names and order.
3. **The callback type must fit the interaction** (``callback_problems``).

And one product rule (``ping_problems``), which Discord would accept but users would not: every
message the bot writes carries ``allowed_mentions`` that allow nothing.

A refusal is answered as Discord answers it: 400, code 50035, the field errors in Discord's nested
``errors`` shape. Every refusal and every ping risk is also added to ``FINDINGS``, which a
session-wide guard reads (tests that send bad bodies on purpose carry ``discord_refusal_expected``).
The places where these checks are more lenient than the spec are all in ``LENIENCIES``.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_FILE = Path(__file__).resolve().parents[1] / "discord_spec" / "openapi.json"
_SCHEMA_BASE = "urn:discord-openapi"


@dataclass(frozen=True)
class Leniency:
    name: str
    reason: str


#: Every place these checks accept more than the spec says, and why. The run prints them.
LENIENCIES: tuple[Leniency, ...] = (
    Leniency(
        "integer strings",
        "the spec types plain integer fields such as flags, min_values and default_member_permissions as "
        "integers; Discord also accepts them as decimal strings (it serialises 64-bit values that way), so "
        "both pass. Integers held to listed values (a component's type or style, a callback or command "
        "type) and the integer branch of a oneOf still take integers only, so a type sent as a string is refused",
    ),
    Leniency(
        "uri format not checked",
        "the spec marks URLs as format uri; JSON Schema treats formats as annotations and Discord's "
        "own parser is looser than RFC 3986 (it takes unencoded spaces), so only the 512-character "
        "limit applies",
    ),
)


# ------------------------------------------------------------------ findings
@dataclass(frozen=True)
class FieldError:
    path: tuple[str | int, ...]
    code: str
    message: str

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path) or "(body)"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Finding:
    """A body Discord would refuse, or one that could ping (kind "refused" / "could_ping")."""

    time: float
    kind: str
    route: str
    problems: tuple[str, ...]
    body: str

    def __str__(self) -> str:
        return f"{self.kind} {self.route}: {'; '.join(self.problems[:3])}"


FINDINGS: list[Finding] = []
_findings_lock = threading.Lock()


def record(kind: str, route: str, problems: Iterable[object], body: Any) -> None:
    with _findings_lock:
        FINDINGS.append(Finding(time.monotonic(), kind, route, tuple(str(p) for p in problems),
                                json.dumps(body, default=str)[:400]))  # fmt: skip


def error_body(errors: Iterable[FieldError]) -> dict[str, Any]:
    """Discord's 400 answer: ``{"code": 50035, "errors": {field: {…: {"_errors": […]}}}, …}``."""
    tree: dict[str, Any] = {}
    for error in errors:
        node = tree
        for part in error.path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": error.code, "message": error.message})
    return {"code": 50035, "errors": tree, "message": "Invalid Form Body"}


# ------------------------------------------------------------------ the spec, made strict
def _strict(node: Any, *, union_branch: bool = False) -> Any:
    """Every object schema that lists its properties refuses any other key; an integer field also
    takes a decimal string (a leniency), except as a branch of a ``oneOf``, where a string branch
    beside it would then match twice."""
    if isinstance(node, list):
        return [_strict(value) for value in node]
    if not isinstance(node, dict):
        return node
    result = {
        key: [_strict(v, union_branch=True) for v in value] if key == "oneOf" and isinstance(value, list)
        else _strict(value)
        for key, value in node.items()
    }  # fmt: skip
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    types = result.get("type")
    listed = types if isinstance(types, list) else [types]
    if "integer" in listed and "string" not in listed and "enum" not in result and not union_branch:
        result["type"] = [*listed, "string"]
        result["pattern"] = INTEGER_STRING
    return result


INTEGER_STRING = r"^-?[0-9]+$"


@functools.cache
def _spec() -> tuple[dict[str, Any], Registry[Any]]:
    document = _strict(json.loads(SPEC_FILE.read_text()))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return document, Registry().with_resource(_SCHEMA_BASE, resource)


@functools.cache
def _validator(method: str, spec_path: str) -> Any:
    document, registry = _spec()
    content = document["paths"][spec_path][method.lower()]["requestBody"]["content"]
    schema = copy.deepcopy(content["application/json"]["schema"])
    schema = _rebase(schema)
    return Draft202012Validator(schema, registry=registry)


def _rebase(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (_SCHEMA_BASE + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else _rebase(v))
                for k, v in node.items()}  # fmt: skip
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node


def _is_discriminator(error: jsonschema.ValidationError) -> bool:
    """The branch of a union is the wrong one: its ``type`` tag or its JSON type does not match."""
    if not error.relative_path:
        return error.validator == "type"
    return error.relative_path[-1] == "type" and error.validator in ("enum", "const") and len(error.relative_path) == 1


def _explain(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For a union (oneOf/anyOf), the error of the branch the body meant to be, not of any branch."""
    while error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for inner in error.context:
            branches.setdefault(inner.schema_path[0], []).append(inner)
        meant = [errs for errs in branches.values() if not any(_is_discriminator(e) for e in errs)]
        error = jsonschema.exceptions.best_match(min(meant or list(branches.values()), key=len))
    return error


def _schema_errors(method: str, spec_path: str, body: Any) -> list[FieldError]:
    found = []
    for error in _validator(method, spec_path).iter_errors(body):
        deepest = _explain(error)
        found.append(FieldError(tuple(deepest.absolute_path), "SCHEMA_INVALID", deepest.message[:300]))
    return found


# ------------------------------------------------------------------ documented limits
CONTENT_MAX = 2000
ACTION_ROWS_MAX = 5  # without the components-v2 flag, whose layouts allow 40 components
IS_COMPONENTS_V2 = 1 << 15
EMBEDS_TOTAL_MAX = 6000
CHOICE_VALUE_MAX = 100
COMMAND_TOTAL_MAX = 4000
CHAT_INPUT = 1


def _embed_text(embed: dict[str, Any]) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    for field in embed.get("fields") or []:
        if isinstance(field, dict):
            total += len(field.get("name") or "") + len(field.get("value") or "")
    for key, inner in (("footer", "text"), ("author", "name")):
        part = embed.get(key)
        if isinstance(part, dict):
            total += len(part.get(inner) or "")
    return total


def message_limits(body: dict[str, Any], prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Limits of a message body (create, edit, webhook, or a callback's ``data``)."""
    found = []
    content = body.get("content")
    if isinstance(content, str) and len(content) > CONTENT_MAX:
        found.append(FieldError((*prefix, "content"), "BASE_TYPE_MAX_LENGTH",
                                f"Must be {CONTENT_MAX} or fewer in length (is {len(content)})."))  # fmt: skip
    flags = body.get("flags")
    components_v2 = isinstance(flags, int) and bool(flags & IS_COMPONENTS_V2)
    rows = body.get("components")
    if not components_v2 and isinstance(rows, list) and len(rows) > ACTION_ROWS_MAX:
        found.append(FieldError((*prefix, "components"), "BASE_TYPE_MAX_LENGTH",
                                f"Must be {ACTION_ROWS_MAX} or fewer in length."))  # fmt: skip
    ids = list(_custom_ids(rows))
    if len(ids) != len(set(ids)):
        found.append(FieldError((*prefix, "components"), "COMPONENT_CUSTOM_ID_DUPLICATED",
                                "Component custom id cannot be duplicated"))  # fmt: skip
    embeds = [e for e in body.get("embeds") or [] if isinstance(e, dict)]
    total = sum(_embed_text(e) for e in embeds)
    if total > EMBEDS_TOTAL_MAX:
        found.append(FieldError((*prefix, "embeds"), "MAX_EMBED_SIZE_EXCEEDED",
                                f"Embed size exceeds maximum size of {EMBEDS_TOTAL_MAX} (is {total})."))  # fmt: skip
    return found


def _custom_ids(components: Any) -> Iterator[str]:
    """Every ``custom_id`` in a message's components, nested ones included (Discord wants them unique)."""
    if not isinstance(components, list):
        return
    for component in components:
        if isinstance(component, dict):
            if isinstance(component.get("custom_id"), str):
                yield component["custom_id"]
            yield from _custom_ids(component.get("components"))


def _choices_limits(data: dict[str, Any]) -> list[FieldError]:
    found = []
    for index, choice in enumerate(data.get("choices") or []):
        value = choice.get("value") if isinstance(choice, dict) else None
        if isinstance(value, str) and len(value) > CHOICE_VALUE_MAX:
            found.append(FieldError(("data", "choices", index, "value"), "BASE_TYPE_MAX_LENGTH",
                                    f"Must be {CHOICE_VALUE_MAX} or fewer in length."))  # fmt: skip
    return found


def _name_ok(name: str) -> bool:
    """Discord's ``^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$``, lower case for chat commands."""
    if not 1 <= len(name) <= 32 or name != name.lower():
        return False
    return all(ch in "-_'" or unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) in ("Mn", "Mc")
               for ch in name)  # fmt: skip


def _option_problems(options: list[Any], prefix: tuple[str | int, ...]) -> Iterator[FieldError]:
    seen_optional = False
    names: set[str] = set()
    for index, option in enumerate(options):
        if not isinstance(option, dict):
            continue
        where = (*prefix, index)
        name = str(option.get("name", ""))
        if not _name_ok(name):
            yield FieldError((*where, "name"), "APPLICATION_COMMAND_INVALID_NAME", f"Invalid option name {name!r}.")
        if name in names:
            yield FieldError((*where, "name"), "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Duplicate name.")
        names.add(name)
        if not 1 <= len(str(option.get("description", ""))) <= 100:
            yield FieldError((*where, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if option.get("type") in (1, 2):  # sub-command (group): its own options
            yield from _option_problems(list(option.get("options") or []), (*where, "options"))
            continue
        if option.get("required"):
            if seen_optional:
                yield FieldError((*where, "required"), "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                                 "Required options must be placed before non-required options.")  # fmt: skip
        else:
            seen_optional = True
        for c_index, choice in enumerate(option.get("choices") or []):
            value = choice.get("value") if isinstance(choice, dict) else None
            if isinstance(value, str) and len(value) > CHOICE_VALUE_MAX:
                yield FieldError((*where, "choices", c_index, "value"), "BASE_TYPE_MAX_LENGTH",
                                 f"Must be {CHOICE_VALUE_MAX} or fewer in length.")  # fmt: skip


def _command_chars(command: dict[str, Any]) -> int:
    total = len(str(command.get("name", ""))) + len(str(command.get("description", "")))

    def walk(options: list[Any]) -> int:
        count = 0
        for option in options:
            if isinstance(option, dict):
                count += len(str(option.get("name", ""))) + len(str(option.get("description", "")))
                for choice in option.get("choices") or []:
                    if isinstance(choice, dict):
                        count += len(str(choice.get("name", ""))) + len(str(choice.get("value", "")))
                count += walk(list(option.get("options") or []))
        return count

    return total + walk(list(command.get("options") or []))


def command_limits(commands: Any) -> list[FieldError]:
    """Application command rules (names, descriptions, option order, the 4000-character budget)."""
    found: list[FieldError] = []
    if not isinstance(commands, list):
        return found
    names: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        if not isinstance(command, dict):
            continue
        kind = int(command.get("type") or CHAT_INPUT)
        name = str(command.get("name", ""))
        if kind == CHAT_INPUT and not _name_ok(name):
            found.append(FieldError((index, "name"), "APPLICATION_COMMAND_INVALID_NAME", f"Invalid name {name!r}."))
        if (kind, name) in names:
            found.append(FieldError((index, "name"), "APPLICATION_COMMAND_ALREADY_EXISTS", "Duplicate command."))
        names.add((kind, name))
        if kind == CHAT_INPUT and not 1 <= len(str(command.get("description", ""))) <= 100:
            found.append(FieldError((index, "description"), "BASE_TYPE_BAD_LENGTH",
                                    "Must be between 1 and 100 in length."))  # fmt: skip
        found += _option_problems(list(command.get("options") or []), (index, "options"))
        if _command_chars(command) > COMMAND_TOTAL_MAX:
            found.append(FieldError((index,), "APPLICATION_COMMAND_TOO_LARGE",
                                    f"Command exceeds maximum size ({COMMAND_TOTAL_MAX})."))  # fmt: skip
    return found


# ------------------------------------------------------------------ the rules per route
MESSAGE_ROUTES = frozenset({
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"),
})  # fmt: skip
COMMAND_ROUTES = frozenset({
    ("PUT", "/applications/{application_id}/commands"),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"),
})  # fmt: skip
CALLBACK_ROUTE = ("POST", "/interactions/{interaction_id}/{interaction_token}/callback")
CHECKED_ROUTES = MESSAGE_ROUTES | COMMAND_ROUTES | {CALLBACK_ROUTE}
#: Callback types whose ``data`` is a message.
MESSAGE_CALLBACKS = frozenset({4, 7})
DEFERRED_CHANNEL_MESSAGE = 5  # "thinking…": data may carry only flags (EPHEMERAL)
DEFERRED_UPDATE_MESSAGE = 6  # an acknowledged component: no data at all
AUTOCOMPLETE_RESULT = 8


def request_problems(method: str, spec_path: str, body: Any) -> list[FieldError]:
    """Why Discord would refuse ``body`` on this route; [] if it would take it."""
    key = (method.upper(), spec_path)
    if key not in CHECKED_ROUTES:
        return []
    if body is None and key in COMMAND_ROUTES:
        return []
    found = _schema_errors(method, spec_path, body)
    if key in MESSAGE_ROUTES and isinstance(body, dict):
        found += message_limits(body)
    elif key in COMMAND_ROUTES:
        found += command_limits(body)
    elif key == CALLBACK_ROUTE and isinstance(body, dict):
        found += _callback_body_limits(body)
    return found


def _callback_body_limits(body: dict[str, Any]) -> list[FieldError]:
    """The spec shares one ``data`` schema between types 4 and 5 and one between 6 and 7; Discord
    does not: a deferred message (5) takes only ``flags``, a deferred update (6) takes no data."""
    data = body.get("data")
    if not isinstance(data, dict):
        return []
    if body.get("type") == DEFERRED_CHANNEL_MESSAGE:
        return [FieldError(("data", key), "UNKNOWN_FIELD", "A deferred message's data takes only flags.")
                for key in data if key != "flags"]  # fmt: skip
    if body.get("type") == DEFERRED_UPDATE_MESSAGE:
        return [FieldError(("data", key), "UNKNOWN_FIELD", "A deferred update takes no data.") for key in data]
    if body.get("type") in MESSAGE_CALLBACKS:
        return message_limits(data, ("data",))
    if body.get("type") == AUTOCOMPLETE_RESULT:
        return _choices_limits(data)
    return []


def ping_problems(method: str, spec_path: str, body: Any) -> list[str]:
    """A message the bot writes must carry ``allowed_mentions`` that allow nothing (a title like
    ``@everyone`` must never ping a server). ``<@id>`` in a card still renders under it."""
    key = (method.upper(), spec_path)
    message: Any = None
    if key in MESSAGE_ROUTES:
        message = body
    elif key == CALLBACK_ROUTE and isinstance(body, dict) and body.get("type") in MESSAGE_CALLBACKS:
        message = body.get("data")
    if not isinstance(message, dict):
        return []
    mentions = message.get("allowed_mentions")
    if not isinstance(mentions, dict):
        return ["no allowed_mentions: Discord's default lets @everyone, roles and users ping"]
    problems = []
    if mentions.get("parse"):
        problems.append(f"allowed_mentions.parse allows {mentions['parse']}")
    if mentions.get("roles"):
        problems.append("allowed_mentions lists roles to ping")
    users = mentions.get("users")
    if users and not _requester_ping(method, spec_path, message, users):
        problems.append("allowed_mentions lists users to ping (only a new message may name the one user it mentions)")
    if mentions.get("replied_user"):
        problems.append("allowed_mentions.replied_user pings the replied-to author")
    return problems


def _requester_ping(method: str, spec_path: str, message: dict[str, Any], users: Any) -> bool:
    """The one deliberate ping: a new channel message naming exactly one user, who is mentioned in
    its content (a member's "your track is playing", /preferences notify). Never an edit."""
    if (method.upper(), spec_path) != ("POST", "/channels/{channel_id}/messages"):
        return False
    if not isinstance(users, list) or len(users) != 1 or not str(users[0]).isdigit():
        return False
    return f"<@{users[0]}>" in str(message.get("content") or "")


# ------------------------------------------------------------------ interaction answers
class InteractionType:
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


def callback_type_problems(interaction: dict[str, Any], answer: dict[str, Any]) -> list[FieldError]:
    """The callback type must fit the interaction it answers."""
    kind, answer_type = interaction.get("type"), answer.get("type")
    allowed: set[int]
    if kind == InteractionType.PING:
        allowed = {1}
    elif kind == InteractionType.APPLICATION_COMMAND:
        allowed = {4, 5, 9}
    elif kind == InteractionType.MESSAGE_COMPONENT:
        allowed = {4, 5, 6, 7, 9}
    elif kind == InteractionType.AUTOCOMPLETE:
        allowed = {8}
    elif kind == InteractionType.MODAL_SUBMIT:
        allowed = {4, 5, 6, 7} if interaction.get("message") else {4, 5}
    else:
        return []
    if answer_type in allowed:
        return []
    return [FieldError(("type",), "INTERACTION_CALLBACK_TYPE_INVALID",
                       f"callback type {answer_type} cannot answer interaction type {kind}")]  # fmt: skip


def answer_problems(interaction: dict[str, Any], answer: Any) -> tuple[list[FieldError], list[str]]:
    """An ``/interactions`` answer, held to what the callback endpoint accepts: (refusals, ping risks)."""
    method, path = CALLBACK_ROUTE
    if not isinstance(answer, dict):
        return [FieldError((), "SCHEMA_INVALID", "the answer is not a JSON object")], []
    refusals = request_problems(method, path, answer) + callback_type_problems(interaction, answer)
    return refusals, ping_problems(method, path, answer)


def check_answer(interaction: dict[str, Any], answer: Any) -> None:
    """Record what Discord would refuse in an ``/interactions`` answer (the session guard reads it)."""
    refusals, pings = answer_problems(interaction, answer)
    if refusals:
        record("refused", "POST /interactions answer", refusals, answer)
    if pings:
        record("could_ping", "POST /interactions answer", pings, answer)
