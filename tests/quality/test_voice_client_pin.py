"""The voice task's DAVE gate and owned reconnect lean on discord.py internals: they must fail loudly,
here, when the installed discord.py is not the one they were read from.

GIVEN ``voice_task.voice_client`` (the one module that subclasses discord.py's voice connection)
THEN the installed discord.py is the pinned version, and every internal it relies on is still there
with the shape it expects.
"""

from __future__ import annotations

import inspect

import discord
import pytest
from discord.voice_state import ConnectionFlowState, SocketReader, VoiceConnectionState

from voice_task.audio import FRAME_MS, OPUS_SILENCE, TrackSource, build_source, ffmpeg_executable
from voice_task.voice_client import SUPPORTED_DISCORD_VERSION, dave_ready


def test_the_installed_discord_py_is_the_version_the_voice_client_was_written_against() -> None:
    assert discord.__version__ == SUPPORTED_DISCORD_VERSION, (
        f"discord.py {discord.__version__} is installed; voice_task/voice_client.py was read against "
        f"{SUPPORTED_DISCORD_VERSION}. Re-read voice_state.py and gateway.py, then move the pin."
    )


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (VoiceConnectionState, "_poll_voice_ws"),
        (VoiceConnectionState, "_potential_reconnect"),
        (VoiceConnectionState, "_wait_for_state"),
        (VoiceConnectionState, "_voice_connect"),
        (VoiceConnectionState, "_connect_websocket"),
        (VoiceConnectionState, "_handshake_websocket"),
        (VoiceConnectionState, "can_encrypt"),
        (VoiceConnectionState, "max_dave_protocol_version"),
        (SocketReader, "_do_run"),
        (discord.VoiceClient, "create_connection_state"),
        (discord.VoiceClient, "send_audio_packet"),
        (discord.VoiceClient, "_get_voice_packet"),
    ],
)
def test_every_discord_py_internal_the_voice_client_uses_is_still_there(owner: type, name: str) -> None:
    assert hasattr(owner, name), f"{owner.__name__}.{name} is gone"


def test_the_flow_states_and_the_hook_signature_are_as_read() -> None:
    assert {"set_guild_voice_state", "got_both_voice_updates", "connected"} <= set(ConnectionFlowState.__members__)
    assert "hook" in inspect.signature(VoiceConnectionState.__init__).parameters
    assert "start_paused" in inspect.signature(SocketReader.__init__).parameters


def test_without_a_voice_client_nothing_may_be_sent() -> None:
    assert dave_ready(None) is False


def test_the_track_source_holds_its_position_while_it_may_not_send_and_skips_the_ogg_headers() -> None:
    # GIVEN a real FFmpeg source of a 2 s Opus tone served over loopback HTTP, and a closed gate
    from tests.support.media import MediaServer, tone_file  # noqa: PLC0415
    from timmybot.sources.models import StreamInfo  # noqa: PLC0415

    with MediaServer() as media:
        media.add("tone.webm", tone_file(440, 2, "webm"))
        stream = StreamInfo(media.url_for("tone.webm"), codec="opus", local=True)
        gate = {"open": False}
        source = TrackSource(
            build_source(stream, position_ms=0, volume=100, executable=ffmpeg_executable()),
            start_ms=0,
            may_send=lambda: gate["open"],
        )
        _read_through_the_gate(source, gate)


def _read_through_the_gate(source: TrackSource, gate: dict[str, bool]) -> None:
    try:
        # WHEN it is read while closed, then opened
        held = [source.read() for _ in range(25)]
        gate["open"] = True
        first = source.read()
        # THEN it gave silence without moving, and then audio, not the OpusHead packet
        assert held == [OPUS_SILENCE] * 25 and source.held_frames == 25
        assert not first.startswith((b"OpusHead", b"OpusTags")) and len(first) > 3
        assert source.position_ms == FRAME_MS
    finally:
        source.cleanup()
