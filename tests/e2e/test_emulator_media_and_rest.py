"""The media server's range and fault controls, and the emulator's REST subset over TLS."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import DiscordEmulator, GuildHandle, Overwrite, OverwriteType, Permission
from tests.support.media import MediaServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]


def _get(url: str, headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# media server ------------------------------------------------------------------------------------
def test_range_request_returns_206_with_the_right_bytes(media_server: MediaServer, tone_440: Path) -> None:
    # GIVEN a served file
    url = media_server.add("tone.webm", tone_440)
    data = tone_440.read_bytes()

    # WHEN a range and a suffix range are asked for
    status, headers, body = _get(url, {"Range": "bytes=100-199"})
    suffix_status, _, suffix = _get(url, {"Range": "bytes=-50"})

    # THEN both are 206 with exactly those bytes
    assert (status, body) == (206, data[100:200])
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert (suffix_status, suffix) == (206, data[-50:])
    assert _get(url)[2] == data


def test_fail_answers_every_request_with_the_status_until_cleared(media_server: MediaServer, tone_440: Path) -> None:
    # GIVEN a file failing with 403
    url = media_server.add("tone.webm", tone_440)
    media_server.fail("tone.webm", 403)

    # WHEN / THEN it is refused until the faults are cleared
    assert _get(url)[0] == 403
    media_server.clear_faults()
    assert _get(url)[0] == 200
    # the server logs a request once it has sent the body: give its thread a moment under load
    deadline = time.monotonic() + 5
    while len(media_server.requests("tone.webm")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.status for r in media_server.requests("tone.webm")] == [403, 200]


def test_fail_after_cuts_the_connection_then_answers_403(media_server: MediaServer, tone_440: Path) -> None:
    # GIVEN a file that fails after 1000 bytes ("403 mid-track")
    url = media_server.add("tone.webm", tone_440)
    media_server.fail_after("tone.webm", 1000, 403)

    # WHEN it is downloaded, then asked for again from where it broke
    with pytest.raises(http.client.IncompleteRead) as cut:
        _get(url)
    status, _, _ = _get(url, {"Range": "bytes=1000-"})

    # THEN the first download stopped at 1000 bytes and the retry is refused
    assert len(cut.value.partial) == 1000
    assert status == 403


def test_stall_sends_some_bytes_then_nothing_until_released(media_server: MediaServer, tone_440: Path) -> None:
    # GIVEN a file that stalls after 2000 bytes
    url = media_server.add("tone.webm", tone_440)
    media_server.stall("tone.webm", 2000)
    received: dict[str, Any] = {}

    def download() -> None:
        with urllib.request.urlopen(url, timeout=10) as response:
            received["head"] = response.read(2000)
            received["head_at"] = time.monotonic()
            try:
                received["rest"] = response.read()
            except http.client.IncompleteRead as exc:
                received["cut_after"] = len(exc.partial)

    # WHEN a client downloads it
    thread = threading.Thread(target=download, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while "head" not in received and time.monotonic() < deadline:
        time.sleep(0.01)

    # THEN it gets the first 2000 bytes and then waits…
    assert len(received["head"]) == 2000
    thread.join(timeout=0.3)
    assert thread.is_alive()
    # … until the stall is released, which ends that connection
    media_server.clear_faults()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert received["cut_after"] == 0


# REST --------------------------------------------------------------------------------------------
def _api(emulator: DiscordEmulator, method: str, path: str, body: Any = None, *, auth: bool = True
         ) -> tuple[int, dict[str, str], Any]:  # fmt: skip
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bot {emulator.bot_token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emulator.api_base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, context=emulator.ssl_context(), timeout=5) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_unknown_routes_answer_404_json_and_are_recorded(emulator: DiscordEmulator) -> None:
    status, headers, body = _api(emulator, "DELETE", "/guilds/1/bans/2")
    assert (status, body) == (404, {"code": 0, "message": "404: Not Found"})
    assert headers["Content-Type"] == "application/json"
    assert [(r.method, r.path) for r in emulator.unmatched_requests()] == [("DELETE", "/guilds/1/bans/2")]


def test_bot_routes_require_the_bot_token(emulator: DiscordEmulator) -> None:
    assert _api(emulator, "GET", "/users/@me", auth=False)[0] == 401
    assert _api(emulator, "GET", "/users/@me")[2]["id"] == str(emulator.bot_user_id)


def test_voice_state_route_follows_member_moves(emulator: DiscordEmulator, guild: GuildHandle) -> None:
    # GIVEN a member not in voice
    alice = emulator.add_member(guild.id, "alice")
    path = f"/guilds/{guild.id}/voice-states/{alice}"
    assert _api(emulator, "GET", path)[::2] == (404, {"code": 10065, "message": "Unknown Voice State"})

    # WHEN she joins the voice channel
    emulator.set_member_voice(guild.id, alice, guild.voice_channel_id)

    # THEN the route reports her channel, until she leaves
    assert _api(emulator, "GET", path)[2]["channel_id"] == str(guild.voice_channel_id)
    emulator.set_member_voice(guild.id, alice, None)
    assert _api(emulator, "GET", path)[0] == 404


def test_guild_channel_and_member_routes_expose_permissions(emulator: DiscordEmulator, guild: GuildHandle) -> None:
    # GIVEN a DJ role, a member with it, and a stage channel closed to @everyone
    dj = emulator.add_role(guild.id, "DJ", Permission.CONNECT | Permission.SPEAK)
    bob = emulator.add_member(guild.id, "bob", roles=[dj])
    stage = emulator.add_channel(
        guild.id, "Stage", type=13, user_limit=5,
        overwrites=[Overwrite(guild.everyone_role_id, OverwriteType.ROLE, deny=Permission.CONNECT),
                    Overwrite(dj, OverwriteType.ROLE, allow=Permission.CONNECT)],
    )  # fmt: skip

    # WHEN a client reads the guild, its roles, the channel and the member
    roles = _api(emulator, "GET", f"/guilds/{guild.id}/roles")[2]
    channel = _api(emulator, "GET", f"/channels/{stage}")[2]
    member = _api(emulator, "GET", f"/guilds/{guild.id}/members/{bob}")[2]
    channels = _api(emulator, "GET", f"/guilds/{guild.id}/channels")[2]

    # THEN everything a permission calculator needs is there
    assert {r["name"]: r["permissions"] for r in roles}["DJ"] == str(int(Permission.CONNECT | Permission.SPEAK))
    assert channel["type"] == 13 and channel["user_limit"] == 5
    assert channel["permission_overwrites"][0] == {
        "id": str(guild.id),
        "type": 0,
        "allow": "0",
        "deny": str(int(Permission.CONNECT)),
    }
    assert member["roles"] == [str(dj)]
    assert _api(emulator, "GET", f"/guilds/{guild.id}")[2]["owner_id"]
    assert len(channels) == 3


def test_messages_and_commands_are_recorded_and_echoed(emulator: DiscordEmulator, guild: GuildHandle) -> None:
    # WHEN a message is created then edited, and commands are registered
    row = {"type": 1, "components": [{"type": 2, "style": 2, "label": "Skip", "custom_id": "v1:skip"}]}
    quiet = {"parse": []}
    created = _api(emulator, "POST", f"/channels/{guild.text_channel_id}/messages",
                   {"content": "Now playing", "components": [row], "allowed_mentions": quiet})[2]  # fmt: skip
    edited = _api(emulator, "PATCH", f"/channels/{guild.text_channel_id}/messages/{created['id']}",
                  {"content": "Paused", "allowed_mentions": quiet})[2]  # fmt: skip
    commands = _api(emulator, "PUT", f"/applications/{emulator.application_id}/guilds/{guild.id}/commands",
                    [{"name": "play", "description": "Play"}])[2]  # fmt: skip

    # THEN the records and answers match
    assert edited["id"] == created["id"] and edited["content"] == "Paused"
    records = emulator.messages(guild.text_channel_id)
    assert [(m.action, m.content) for m in records] == [("create", "Now playing"), ("edit", "Paused")]
    assert records[0].components == [row]
    assert commands[0]["name"] == "play" and "id" in commands[0]
    assert emulator.registered_commands(guild.id)[0]["name"] == "play"


def test_gateway_bot_reports_session_start_limit(emulator: DiscordEmulator) -> None:
    emulator.set_session_start_limit(total=10, remaining=7, recommended_shards=2)
    body = _api(emulator, "GET", "/gateway/bot")[2]
    assert body["url"] == emulator.gateway_url and body["shards"] == 2
    assert body["session_start_limit"] == {"total": 10, "remaining": 7, "reset_after": 14_400_000,
                                           "max_concurrency": 1}  # fmt: skip
