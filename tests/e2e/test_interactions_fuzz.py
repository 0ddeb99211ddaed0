"""GIVEN the api app with real keys WHEN correctly signed bodies of every shape arrive (mutated
interactions, deep nesting, odd numbers, broken encodings) THEN no answer is a 5xx, every 200 is an
answer Discord takes, and no handler crashes (no generic "something went wrong" either).

The bodies are generated from a fixed seed, so a failure names a case that reproduces. Nothing here
leaves loopback: Discord's API and the OAuth providers point at a closed port.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib import commands
from tests.support.signing import (
    SignedApi,
    autocomplete,
    command,
    component,
    modal_submit,
    next_interaction_id,
)

SEED = 15
CASES = 3000
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connect is refused at once
ALLOWED_STATUSES = {200, 400, 401, 413}
ANSWER_TYPES = {1, 4, 5, 6, 7, 8, 9}

_ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**64,
    -(2**63) - 1,
    10**400,
    1.5,
    -0.0,
    1e308,
    "",
    " ",
    "0",
    "99999999999999999999999",
    "1" * 40,
    "\u0000",
    "\ud800",
    "\udfff\ud800",
    "a\r\nb",
    "@everyone",
    "💥" * 50,
    "x" * 5000,
    "v1:np:skip",
    "v1:queue:page:99999999999",
    "v9:whatever",
    "https://127.0.0.1/",
    "https://youtube.com/redirect?q=http://169.254.169.254/",
    [],
    {},
    [None],
    {"id": None},
    [[[[[]]]]],
    {"a": {"b": {"c": {}}}},
)


def _templates() -> list[dict[str, Any]]:
    names = [name for name in commands.BY_NAME]
    built: list[dict[str, Any]] = [{"type": 1}]
    for name in names:
        built.append(command(name))
    built += [
        command("play", {"query": "never gonna give you up"}),
        command("volume", {"level": 50}),
        command("filter", {"preset": "nightcore"}),
        command("speed", {"value": 1.25}),
        command("pitch", {"semitones": -4}),
        command("seek", {"position": "1:30"}),
        command("remove", {"position": 1}),
        command("move", {"from": 1, "to": 2}),
        command("link", {"platform": "youtube"}),
        command("unlink", {"platform": "spotify"}),
        command("liked-songs", {"platform": "spotify"}),
        command("lyrics", {"query": "Queen - Bohemian Rhapsody"}),
        component(f"v1:lyrics:{'ab' * 16}:2"),
        component("v1:np:skip"),
        component("v1:np:pause"),
        component("v1:queue:page:2"),
        autocomplete("play"),
        modal_submit(),
    ]
    return built


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return root


def _odd(rng: random.Random) -> Any:
    value = rng.choice(_ODD_VALUES)
    return json.loads(json.dumps(value)) if isinstance(value, list | dict) else value  # a fresh copy


def _mutate(rng: random.Random, payload: dict[str, Any]) -> Any:
    body: Any = json.loads(json.dumps(payload))
    body["id"] = next_interaction_id()  # a new interaction each time, so dedupe answers none of them
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(body))
        path = rng.choice(paths)
        operation = rng.random()
        if operation < 0.6:
            body = _set(body, path, _odd(rng))
        elif operation < 0.75 and path:
            parent = body
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, list) and parent:
                parent.pop()
        elif operation < 0.9 and isinstance(body, dict):
            body[rng.choice(["extra", "data", "member", "user", "type", "guild_id", "id"])] = _odd(rng)
        else:
            depth = rng.randint(1, 40)
            body = _set(body, path, json.loads("[" * depth + "]" * depth))
    return body


def _encode(rng: random.Random, body: Any) -> bytes:
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5) if not isinstance(body, bytes) else ""
    choice = rng.random()
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate as raw bytes: invalid UTF-8
    if choice < 0.7:
        return raw
    if choice < 0.75:
        return b"\xef\xbb\xbf" + raw  # a byte-order mark
    if choice < 0.8:
        return text.encode("utf-16", "surrogatepass")
    if choice < 0.85:
        return raw[: rng.randint(0, max(0, len(raw) - 1))]  # truncated
    if choice < 0.9:
        return raw.replace(b":", b":\xff", 1)  # invalid UTF-8
    if choice < 0.95:
        return b" \t\r\n" * 10 + raw + b"\n"
    return raw.replace(b'"type"', b'"type": 2, "type"', 1)  # a duplicate key


@pytest.fixture
def api(make_api: Callable[..., SignedApi]) -> SignedApi:
    return make_api(
        dispatcher="inline",
        launcher="none",
        discord_api_base=CLOSED,
        google_client_id="fuzz-client",
        google_device_url=f"{CLOSED}/device",
        google_token_url=f"{CLOSED}/token",
        google_revoke_url=f"{CLOSED}/revoke",
        spotify_client_id="fuzz-client",
        spotify_redirect_uri="https://example.invalid/oauth/spotify/callback",
        spotify_token_url=f"{CLOSED}/token",
        spotify_api_url=CLOSED,
        youtube_api_url=CLOSED,
        lyrics_api_url=CLOSED,
        rate_play_user="off",
        rate_play_guild="off",
        rate_link_user="off",
        rate_check_user="off",
        rate_personal_user="off",
    )


def test_no_signed_body_gets_a_5xx_or_crashes_a_handler(api: SignedApi, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(SEED)
    templates = _templates()
    seen_statuses: dict[int, int] = {}
    problems: list[str] = []
    with caplog.at_level(logging.ERROR, logger="chalicelib.interactions"):
        for case in range(CASES):
            template = rng.choice(templates)
            raw = _encode(rng, _mutate(rng, template))
            response = api.post(raw, headers=api.signer.headers(raw))
            seen_statuses[response.status_code] = seen_statuses.get(response.status_code, 0) + 1
            if response.status_code not in ALLOWED_STATUSES:
                problems.append(f"case {case}: HTTP {response.status_code} for {raw[:200]!r}")
                continue
            if response.status_code == 200:
                answer = response.json_body
                if not isinstance(answer, dict) or answer.get("type") not in ANSWER_TYPES:
                    problems.append(f"case {case}: not a Discord answer {answer!r} for {raw[:200]!r}")
                elif "went wrong on my side" in json.dumps(answer.get("data", {})):
                    problems.append(f"case {case}: a handler crashed for {raw[:300]!r}")
    crashes = [record.getMessage() for record in caplog.records if record.name == "chalicelib.interactions"]
    assert problems == [], "\n".join(problems[:10])
    assert crashes == []
    # The generator reached every kind of answer: accepted, refused as malformed, too large or unsigned.
    assert seen_statuses.get(200, 0) > CASES // 4
    assert seen_statuses.get(400, 0) > 0
