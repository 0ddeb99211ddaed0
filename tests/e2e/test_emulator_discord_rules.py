"""The emulator refuses what Discord refuses, as Discord does (400, code 50035, field errors).

Each test sends one body that breaks one rule, on purpose (so they carry
``discord_refusal_expected``), and one that keeps it, so that the check is shown to be able to fail
and to pass.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.emulator import discord_rules as rules
from tests.support.interactions_client import Actor, InteractionsClient
from tests.support.loopback import serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.discord_refusal_expected, pytest.mark.timeout(60)]

QUIET = {"parse": []}
LONG_URL = "https://x.example/" + "a" * 500


def _send(emulator: DiscordEmulator, method: str, path: str, body: Any, *, auth: bool = True,
          content_type: str = "application/json", raw: bytes | None = None) -> tuple[int, Any]:  # fmt: skip
    headers = {"Content-Type": content_type}
    if auth:
        headers["Authorization"] = f"Bot {emulator.bot_token}"
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(emulator.api_base + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, context=emulator.ssl_context(), timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _message(emulator: DiscordEmulator, guild: GuildHandle, body: dict[str, Any]) -> tuple[int, Any]:
    return _send(emulator, "POST", f"/channels/{guild.text_channel_id}/messages", body)


def _errors(answer: Any) -> str:
    return json.dumps(answer.get("errors", {}))


def test_a_good_message_is_taken_and_an_allowed_mention_typo_is_refused_as_discord_refuses_it(
    emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    good = _message(emulator, guild, {"content": "hi", "allowed_mentions": QUIET})
    typo = _message(emulator, guild, {"content": "hi", "allowed_mention": QUIET})

    assert good[0] == 200
    assert typo[0] == 400
    assert typo[1]["code"] == 50035 and typo[1]["message"] == "Invalid Form Body"
    assert "allowed_mention" in _errors(typo[1])
    assert [m.content for m in emulator.messages(guild.text_channel_id)] == ["hi"]  # nothing applied


WEBHOOK_ROUTES = ["POST followup", "PATCH @original", "PATCH followup", "PATCH channel message"]


def _webhook_route(emulator: DiscordEmulator, guild: GuildHandle, which: str) -> tuple[str, str]:
    """The method and path of one message route, with whatever it edits already there."""
    hook = f"/webhooks/{emulator.application_id}/{uuid.uuid4().hex}"
    first = {"content": "first", "allowed_mentions": QUIET}
    if which == "POST followup":
        return "POST", hook
    if which == "PATCH @original":
        return "PATCH", f"{hook}/messages/@original"
    if which == "PATCH followup":
        status, followup = _send(emulator, "POST", hook, first, auth=False)
        assert status == 200, followup
        return "PATCH", f"{hook}/messages/{followup['id']}"
    status, message = _message(emulator, guild, first)
    assert status == 200, message
    return "PATCH", f"/channels/{guild.text_channel_id}/messages/{message['id']}"


@pytest.mark.parametrize("which", WEBHOOK_ROUTES)
def test_an_allowed_mention_typo_is_refused_on_every_webhook_and_edit_route(
    emulator: DiscordEmulator, guild: GuildHandle, which: str
) -> None:
    method, path = _webhook_route(emulator, guild, which)
    as_bot = path.startswith("/channels/")  # webhook routes take the interaction token, not the bot's
    before = len(rules.FINDINGS)
    typo = _send(emulator, method, path, {"content": "hi", "allowed_mention": QUIET}, auth=as_bot)
    good = _send(emulator, method, path, {"content": "hi", "allowed_mentions": QUIET}, auth=as_bot)

    assert typo[0] == 400, typo
    assert typo[1]["code"] == 50035 and typo[1]["message"] == "Invalid Form Body"
    assert "allowed_mention" in _errors(typo[1])
    assert good[0] == 200, good
    # the typo is refused, and noted as able to ping (Discord would ignore the key and use its default)
    assert sorted(f.kind for f in rules.FINDINGS[before:]) == ["could_ping", "refused"]


def test_content_over_2000_code_points_is_refused_and_2000_astral_ones_are_taken(
    emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    at_limit = "🎵" * 2000  # 2000 code points (4000 UTF-16 units): Discord counts code points
    assert _message(emulator, guild, {"content": at_limit, "allowed_mentions": QUIET})[0] == 200
    status, answer = _message(emulator, guild, {"content": at_limit + "x", "allowed_mentions": QUIET})
    assert status == 400 and "content" in answer["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"embeds": [{"title": "t"}] * 11}, "embeds"),
        ({"embeds": [{"title": "t" * 257}]}, "title"),
        ({"embeds": [{"description": "d" * 4097}]}, "description"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, "fields"),
        ({"embeds": [{"fields": [{"name": "n" * 257, "value": "v"}]}]}, "name"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]}, "value"),
        ({"embeds": [{"footer": {"text": "f" * 2049}}]}, "text"),
        ({"embeds": [{"author": {"name": "a" * 257}}]}, "name"),
        ({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}, "embeds"),  # total > 6000
    ],
)
def test_embed_limits(emulator: DiscordEmulator, guild: GuildHandle, body: dict[str, Any], field: str) -> None:
    status, answer = _message(emulator, guild, {**body, "allowed_mentions": QUIET})
    assert status == 400 and field in _errors(answer)


def _button(**extra: Any) -> dict[str, Any]:
    return {"type": 2, "style": 2, "label": "Skip", "custom_id": "v1:skip", **extra}


@pytest.mark.parametrize(
    ("components", "field"),
    [
        ([{"type": 1, "components": [_button(custom_id=f"v1:{i}")]} for i in range(6)], "components"),
        ([{"type": 1, "components": [_button(custom_id=f"v1:{i}") for i in range(6)]}], "components"),
        ([{"type": 1, "components": [_button(custom_id="x" * 101)]}], "custom_id"),
        ([{"type": 1, "components": [_button(custom_id="v1:same"), _button(custom_id="v1:same")]}], "components"),
        ([{"type": 1, "components": [_button(custom_id="v1:same")]},
          {"type": 1, "components": [_button(custom_id="v1:same")]}], "components"),
        ([{"type": 1, "components": [_button(label="l" * 81)]}], "label"),
        ([{"type": 1, "components": [{"type": 2, "style": 5, "label": "Open", "url": LONG_URL}]}], "url"),
        ([{"type": 1, "components": [{"type": 3, "custom_id": "v1:pick", "placeholder": "p" * 151,
                                       "options": [{"label": "a", "value": "a"}]}]}], "placeholder"),
        ([{"type": 1, "components": [{"type": 3, "custom_id": "v1:pick",
                                       "options": [{"label": str(i), "value": str(i)} for i in range(26)]}]}],
         "options"),
        ([{"type": 1, "components": [{"type": 3, "custom_id": "v1:pick",
                                       "options": [{"label": "l" * 101, "value": "a"}]}]}], "label"),
        ([{"type": 1, "components": [{"type": 3, "custom_id": "v1:pick",
                                       "options": [{"label": "a", "value": "v" * 101}]}]}], "value"),
        ([{"type": 1, "components": [{"type": 3, "custom_id": "v1:pick",
                                       "options": [{"label": "a", "value": "a", "description": "d" * 101}]}]}],
         "description"),
    ],
)  # fmt: skip
def test_component_limits(emulator: DiscordEmulator, guild: GuildHandle, components: list[Any], field: str) -> None:
    status, answer = _message(emulator, guild, {"content": "x", "components": components, "allowed_mentions": QUIET})
    assert status == 400 and field in _errors(answer), answer


def test_a_message_without_allowed_mentions_is_taken_but_recorded_as_able_to_ping(
    emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    before = len(rules.FINDINGS)
    status, _ = _message(emulator, guild, {"content": "@everyone new track"})

    assert status == 200  # Discord takes it, and would ping the whole server
    found = rules.FINDINGS[before:]
    assert [f.kind for f in found] == ["could_ping"]
    assert emulator.ping_bodies() and not emulator.refused_bodies()


def test_allowed_mentions_that_allow_something_are_recorded_too(emulator: DiscordEmulator, guild: GuildHandle) -> None:
    before = len(rules.FINDINGS)
    _message(emulator, guild, {"content": "hi", "allowed_mentions": {"parse": ["everyone"]}})
    _message(emulator, guild, {"content": "hi", "allowed_mentions": {"parse": [], "users": ["1"]}})
    _message(emulator, guild, {"content": "hi <@1> <@2>", "allowed_mentions": {"parse": [], "users": ["1", "2"]}})
    _message(emulator, guild, {"content": "hi <@1>", "allowed_mentions": {"parse": [], "users": ["1"], "roles": ["3"]}})
    assert [f.kind for f in rules.FINDINGS[before:]] == ["could_ping"] * 4


def test_the_one_deliberate_ping_names_one_mentioned_user_on_a_new_message(
    emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    # GIVEN the requester's "your track is playing" (/preferences notify): one user, mentioned
    before = len(rules.FINDINGS)
    status, _ = _message(
        emulator, guild, {"content": "<@1> your track", "allowed_mentions": {"parse": [], "users": ["1"]}}
    )

    # THEN it is taken and not recorded as a stray ping
    assert status == 200
    assert rules.FINDINGS[before:] == [] and not emulator.ping_bodies()


def _callback(emulator: DiscordEmulator, body: dict[str, Any]) -> tuple[int, Any]:
    return _send(emulator, "POST", f"/interactions/1/{uuid.uuid4().hex}/callback", body, auth=False)


def test_a_callbacks_data_may_carry_only_the_fields_of_its_type(emulator: DiscordEmulator) -> None:
    status, answer = _callback(emulator, {"type": 8, "data": {"content": "hi"}})
    assert status == 400 and "content" in _errors(answer)
    assert _callback(emulator, {"type": 8, "data": {"choices": [{"name": "a", "value": "a"}]}})[0] == 204
    assert _callback(emulator, {"type": 4, "data": {"content": "hi", "allowed_mentions": QUIET}})[0] == 204


@pytest.mark.parametrize(
    ("body", "taken"),
    [
        ({"type": 5}, True),
        ({"type": 5, "data": {"flags": 64}}, True),  # an ephemeral "thinking…"
        ({"type": 5, "data": {"flags": 64, "content": "hi"}}, False),  # the spec shares 4's data with 5
        ({"type": 5, "data": {"allowed_mentions": QUIET}}, False),
        ({"type": 6}, True),
        ({"type": 6, "data": {}}, True),
        ({"type": 6, "data": {"content": "hi"}}, False),  # the spec shares 7's data with 6
        ({"type": 6, "data": {"flags": 64}}, False),
    ],
)  # fmt: skip
def test_deferred_callbacks_take_only_what_discord_takes(emulator: DiscordEmulator, body: dict[str, Any],
                                                         taken: bool) -> None:  # fmt: skip
    status, answer = _callback(emulator, body)
    assert status == (204 if taken else 400), answer
    if not taken:
        assert answer["code"] == 50035 and "data" in answer["errors"]


def test_autocomplete_choices_are_limited_to_25_and_100_characters(emulator: DiscordEmulator) -> None:
    too_many = [{"name": str(i), "value": str(i)} for i in range(26)]
    assert _callback(emulator, {"type": 8, "data": {"choices": too_many}})[0] == 400
    assert _callback(emulator, {"type": 8, "data": {"choices": [{"name": "n" * 101, "value": "a"}]}})[0] == 400
    assert _callback(emulator, {"type": 8, "data": {"choices": [{"name": "n", "value": "v" * 101}]}})[0] == 400


def test_integer_fields_take_integer_strings_as_discord_does_but_nothing_else(
    emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    assert _message(emulator, guild, {"content": "x", "flags": "4096", "allowed_mentions": QUIET})[0] == 200
    assert _message(emulator, guild, {"content": "x", "flags": "loud", "allowed_mentions": QUIET})[0] == 400
    # integers held to listed values take no string: a callback type, a component's type and style
    assert _callback(emulator, {"type": "4", "data": {"content": "x", "allowed_mentions": QUIET}})[0] == 400
    button = {"type": 2, "style": 1, "label": "a", "custom_id": "a"}
    for row in ({"type": "1", "components": [button]}, {"type": 1, "components": [{**button, "style": "1"}]}):
        assert _message(emulator, guild, {"content": "x", "allowed_mentions": QUIET, "components": [row]})[0] == 400
    assert any(leniency.name == "integer strings" for leniency in rules.LENIENCIES)


@pytest.mark.parametrize(
    ("commands", "field"),
    [
        ([{"name": "Play", "description": "Play"}], "name"),  # chat commands are lower case
        ([{"name": "play now", "description": "Play"}], "name"),
        ([{"name": "p" * 33, "description": "Play"}], "name"),
        ([{"name": "play", "description": ""}], "description"),
        ([{"name": "play", "description": "d" * 101}], "description"),
        ([{"name": "play", "description": "Play", "options": [
            {"type": 3, "name": "extra", "description": "x"},
            {"type": 3, "name": "query", "description": "q", "required": True}]}], "required"),
        ([{"name": "play", "description": "Play", "options": [
            {"type": 3, "name": f"o{i}", "description": "x"} for i in range(26)]}], "options"),
        ([{"name": "play", "description": "Play"}, {"name": "play", "description": "Again"}], "name"),
        ([{"name": "play", "description": "d" * 100, "options": [
            {"type": 3, "name": f"o{i}", "description": "x" * 100,
             "choices": [{"name": "c" * 100, "value": "v" * 100} for _ in range(20)]} for i in range(3)]}], "0"),
    ],
)  # fmt: skip
def test_command_rules(emulator: DiscordEmulator, guild: GuildHandle, commands: list[Any], field: str) -> None:
    status, answer = _send(emulator, "PUT", f"/applications/{emulator.application_id}/guilds/{guild.id}/commands",
                           commands)  # fmt: skip
    assert status == 400 and field in _errors(answer), answer
    assert emulator.registered_commands(guild.id) == []


def _multipart(payload: dict[str, Any], files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="payload_json"\r\n'
             f"Content-Type: application/json\r\n\r\n{json.dumps(payload)}\r\n".encode()]  # fmt: skip
    for name, data in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="f.txt"\r\n'
                     "Content-Type: text/plain\r\n\r\n".encode() + data + b"\r\n")  # fmt: skip
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_multipart_bodies_are_checked_too_payload_json_and_files(emulator: DiscordEmulator, guild: GuildHandle) -> None:
    path = f"/channels/{guild.text_channel_id}/messages"
    good, kind = _multipart({"content": "log", "allowed_mentions": QUIET}, {"files[0]": b"hello"})
    typo, typo_kind = _multipart({"content": "log", "allowed_mention": QUIET}, {"files[0]": b"hello"})
    too_big = b"x" * (10 * 1024 * 1024 + 1)
    big, big_kind = _multipart({"content": "log", "allowed_mentions": QUIET}, {"files[0]": too_big})

    assert _send(emulator, "POST", path, None, content_type=kind, raw=good)[0] == 200
    assert _send(emulator, "POST", path, None, content_type=typo_kind, raw=typo)[0] == 400
    status, answer = _send(emulator, "POST", path, None, content_type=big_kind, raw=big)
    assert status == 400 and "files" in answer["errors"]


@pytest.mark.parametrize(
    ("interaction", "answer", "refused"),
    [
        ({"type": 4}, {"type": 4, "data": {"content": "x", "allowed_mentions": QUIET}}, True),  # autocomplete → 8
        ({"type": 4}, {"type": 8, "data": {"choices": []}}, False),
        ({"type": 2}, {"type": 7, "data": {"content": "x", "allowed_mentions": QUIET}}, True),  # 7 only for components
        ({"type": 2}, {"type": 6}, True),
        ({"type": 3}, {"type": 7, "data": {"content": "x", "allowed_mentions": QUIET}}, False),
        ({"type": 5}, {"type": 9, "data": {"custom_id": "v1:m", "title": "t", "components": []}}, True),  # no 9 to 5
        ({"type": 5}, {"type": 7, "data": {"content": "x", "allowed_mentions": QUIET}}, True),  # no message: no 7
        ({"type": 5, "message": {"id": "1"}}, {"type": 7, "data": {"content": "x", "allowed_mentions": QUIET}}, False),
        ({"type": 2}, {"type": 8, "data": {"content": "hi"}}, True),
        ({"type": 5}, {"type": 6}, True),  # a modal submit not opened from a component: no 6 (nor 7)
        ({"type": 5, "message": {"id": "1"}}, {"type": 6}, False),  # one from a component's message: 6 fits
        ({"type": 5}, {"type": 5}, False),
        ({"type": 3}, {"type": 6}, False),
    ],
)  # fmt: skip
def test_the_callback_type_must_fit_the_interaction(interaction: dict[str, Any], answer: dict[str, Any],
                                                    refused: bool) -> None:  # fmt: skip
    refusals, _ = rules.answer_problems(interaction, answer)
    assert bool(refusals) == refused, refusals


def test_an_answer_that_could_ping_is_recorded() -> None:
    refusals, pings = rules.answer_problems({"type": 2}, {"type": 4, "data": {"content": "@everyone"}})
    assert refusals == [] and pings


class _FixedAnswer(BaseHTTPRequestHandler):
    """A bot endpoint that gives every interaction the same answer (``server.answer``)."""

    server: _FixedAnswerServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        raw = json.dumps(self.server.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _FixedAnswerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FixedAnswer)
        self.answer: dict[str, Any] = {}


@pytest.fixture
def fixed_answer() -> Iterator[_FixedAnswerServer]:
    server = _FixedAnswerServer()
    serve_in_thread(server, "fixed-answer-bot")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        ({"type": 6}, True),  # a deferred update to a modal submit that no component opened
        ({"type": 5, "data": {"flags": 64, "content": "hi"}}, True),  # a deferred message with content
        ({"type": 5, "data": {"flags": 64}}, False),
    ],
)  # fmt: skip
def test_a_bad_answer_through_the_interactions_client_is_a_refusal_the_guard_reads(
    fixed_answer: _FixedAnswerServer, answer: dict[str, Any], refused: bool
) -> None:
    # GIVEN a bot endpoint that answers a modal submit (not opened from a component) with ``answer``
    fixed_answer.answer = answer
    host, port = fixed_answer.server_address[:2]
    client = InteractionsClient(f"http://{host!s}:{port}/interactions")
    actor = Actor(guild_id="100000000000000000", channel_id="100000000000000001")
    before = len(rules.FINDINGS)
    # WHEN the client sends the interaction and takes the 200 answer
    status, got = client.send(client.modal_submit("v1:modal", {"name": "x"}, actor=actor))
    # THEN the answer is in the findings the session guard reads, as refused
    assert status == 200 and got == answer
    found = rules.FINDINGS[before:]
    assert [f.kind for f in found] == (["refused"] if refused else [])
    assert all(f.route == "POST /interactions answer" for f in found)
