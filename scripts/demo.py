"""The newcomer demo: TimmyBot against the loopback Discord emulator, no credentials needed.

``scripts/run_local.py`` starts it when no Discord credentials are set. It starts the emulator
(REST, gateway and voice on 127.0.0.1 with a throwaway TLS CA) and a loopback media server with
generated tones, then sends signed interactions the way Discord does and prints each round trip.
It ends with what the emulated voice server heard.

This is demo code on top of the test support package (tests/support); nothing in production
imports it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from tests.support.audio import analyse
from tests.support.dave_checks import bot_transitions, privacy_code_problems
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.interactions_client import Actor, InteractionsClient
from tests.support.media import MediaServer, tone_file

PLAY_TIMEOUT_S = 60.0


class Demo:
    def __init__(self, *, data_dir: Path, signing_seed: str | None) -> None:
        if signing_seed is None:
            raise SystemExit(
                "The demo signs interactions with the development key: unset TIMMYBOT_DISCORD_PUBLIC_KEY to use it."
            )
        self.data_dir = data_dir
        self.signing_key = SigningKey(bytes.fromhex(signing_seed))
        self.emulator = DiscordEmulator()
        self.media = MediaServer()
        self.guild: GuildHandle | None = None
        self.listener_id = 0

    def start(self) -> dict[str, str]:
        """Start the emulator and the media server; return the settings the bot needs to use them."""
        self.emulator.start()
        self.media.start()
        self.guild = self.emulator.add_guild("TimmyBot demo")
        self.listener_id = self.emulator.add_member(self.guild.id, "demo-listener")
        self.emulator.set_member_voice(self.guild.id, self.listener_id, self.guild.voice_channel_id)
        for freq in (440, 660):
            self.media.add(f"tone-{freq}.webm", tone_file(freq, 4, "webm"))
        print(f"Loopback Discord emulator on {self.emulator.api_base}")
        print(f"  guild {self.guild.id} with #general and the 'General' voice channel; a listener is in voice")
        return {
            "TIMMYBOT_DISCORD_API_BASE": self.emulator.api_base,
            "TIMMYBOT_DISCORD_GATEWAY_URL": self.emulator.gateway_url,
            "TIMMYBOT_DISCORD_BOT_TOKEN": self.emulator.bot_token,
            "TIMMYBOT_DISCORD_APPLICATION_ID": str(self.emulator.application_id),
            "TIMMYBOT_ALLOWLIST_EXTRA": str(self.guild.id),
            "TIMMYBOT_ALLOW_LOCAL_MEDIA": "true",
            # The network guard lets the demo's loopback media server through (its port only).
            "TIMMYBOT_NET_GUARD_ALLOW": f"127.0.0.1:{self.media.port}",
            "TIMMYBOT_VOICE_TASK_LOG_DIR": str(self.data_dir / "voice-task-logs"),
            "SSL_CERT_FILE": str(self.emulator.ca_file),
        }

    def run(self, endpoint: str) -> None:
        assert self.guild is not None
        client = InteractionsClient(endpoint, self.signing_key, application_id=self.emulator.application_id)
        actor = Actor(guild_id=self.guild.id, channel_id=self.guild.text_channel_id or 0, user_id=self.listener_id)

        self._round_trip(client, "PING", client.ping())
        self._round_trip(client, "/queue", client.command("queue", actor=actor))
        self._round_trip(client, "/nowplaying", client.command("nowplaying", actor=actor))
        self._play(client, actor)

    def _play(self, client: InteractionsClient, actor: Actor) -> None:
        assert self.guild is not None
        url = self.media.url_for("tone-440.webm")
        sent_at = time.monotonic()
        payload = client.command("play", {"query": url}, actor=actor)
        status, body = self._round_trip(client, f"/play {url}", payload)
        if status != 200 or body.get("type") != 5:
            print("  /play was not deferred: no audio to wait for.")
            return
        token = str(payload["token"])
        self._wait_for_webhook(token)
        first = self._wait_for_audio(sent_at)
        if first is None:
            print(f"  no audio within {PLAY_TIMEOUT_S:.0f} s (voice task logs: {self.data_dir.name}/voice-task-logs/)")
            return
        print(f"  first audio packet {first - sent_at:.2f} s after /play (cold start of the voice task included)")
        time.sleep(2.0)
        self._round_trip(client, "/nowplaying", client.command("nowplaying", actor=actor))
        heard = analyse(self.emulator.packets(self.guild.id, since=first))
        codes = self.emulator.privacy_codes(self.guild.id)
        code = codes[-1].code if codes else "none"
        print(
            f"Heard {heard.dominant_hz or 0:.0f} Hz for {heard.duration_s:.1f} s "
            f"({heard.packet_count} Opus packets, {heard.rms_dbfs or 0:.1f} dBFS) in the voice channel, "
            f"decrypted by a DAVE listener (libdave; privacy code {code}); "
            f"{self.emulator.plaintext_frames(self.guild.id)} frames sent in plain text."
        )
        self._print_privacy_codes()
        self._round_trip(client, "/stop", client.command("stop", actor=actor))

    def _print_privacy_codes(self) -> None:
        """Whether the privacy code the voice task logged after each DAVE transition is the listener's."""
        assert self.guild is not None
        logs = [p.read_text(errors="replace") for p in sorted((self.data_dir / "voice-task-logs").glob("*.log"))]
        logged = bot_transitions(logs)
        problems = privacy_code_problems(self.emulator, self.guild.id, logs)
        if problems:
            print(f"Privacy codes: the bot's do not match the listener's: {'; '.join(problems[:3])}")
        elif logged:
            print(f"Privacy codes: the bot's match the listener's ({len(logged)} DAVE transition(s) logged)")
        else:
            print("Privacy codes: the bot logged none")

    def _wait_for_webhook(self, token: str) -> None:
        deadline = time.monotonic() + PLAY_TIMEOUT_S
        while time.monotonic() < deadline:
            original = self.emulator.original_message(token)
            if original is not None:
                print(f"  <- worker edited the reply: {_summary(original)}")
                return
            time.sleep(0.1)
        print("  the worker did not edit the deferred reply in time")

    def _wait_for_audio(self, since: float) -> float | None:
        assert self.guild is not None
        deadline = since + PLAY_TIMEOUT_S
        while time.monotonic() < deadline:
            packets = self.emulator.packets(self.guild.id, since=since)
            if len(packets) >= 10:
                return packets[0].time
            time.sleep(0.05)
        return None

    def _round_trip(
        self, client: InteractionsClient, label: str, payload: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        status, body = client.send(payload)
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"-> {label}")
        print(f"  <- HTTP {status} in {elapsed_ms:.0f} ms: {_summary(body)}")
        return status, body

    def stop(self) -> None:
        self.media.stop()
        self.emulator.stop()


def _summary(body: Any) -> str:
    """One readable line of a response: type, content and embed titles."""
    if not isinstance(body, dict):
        return str(body)[:200]
    data = body.get("data", body)
    parts = []
    if "type" in body and "id" not in body:  # an interaction response, not a message object
        parts.append(f"type {body['type']}")
    if isinstance(data, dict):
        if data.get("content"):
            parts.append(repr(str(data["content"])[:160]))
        for embed in data.get("embeds") or []:
            title = embed.get("title") or ""
            description = (embed.get("description") or "").replace("\n", " | ")
            parts.append(f"embed {title!r}: {description[:160]!r}")
        if data.get("flags") == 64:
            parts.append("(ephemeral)")
    return ", ".join(parts) if parts else json.dumps(body)[:200]
