"""FFmpeg's stderr tail under discord.py's real reader thread, with real FFmpeg."""

from __future__ import annotations

import threading
import time

import discord

from tests.support.media import tone_file
from voice_task.audio import EOF_PAUSE_S, StderrTail, ffmpeg_executable

WINDOW_S = 1.0


class _CountingTail(StderrTail):
    """Counts the empty writes discord.py's reader makes once FFmpeg's stderr is at its end."""

    def __init__(self) -> None:
        super().__init__()
        self.empty_writes = 0
        self.at_end = threading.Event()

    def write(self, data: bytes) -> int:
        if not data:
            self.empty_writes += 1
            self.at_end.set()
        return super().write(data)


def test_the_stderr_reader_idles_after_ffmpeg_exits_and_the_track_still_plays_whole() -> None:
    # GIVEN a one-second track, which FFmpeg writes into the pipe and exits long before it is played
    tail = _CountingTail()
    source = discord.FFmpegOpusAudio(
        str(tone_file(440, 1.0)),
        codec="copy",
        executable=ffmpeg_executable(),
        stderr=tail,  # type: ignore[arg-type]
    )
    try:
        assert tail.at_end.wait(timeout=30), "FFmpeg's stderr never reached its end"

        # WHEN nobody reads the track for a second
        before = tail.empty_writes
        time.sleep(WINDOW_S)
        during = tail.empty_writes - before

        # THEN the reader made about one empty write per pause, not a busy loop's hundreds of
        # thousands, and every frame of the track is still there to play
        assert during <= WINDOW_S / EOF_PAUSE_S + 2, during
        frames = iter(source.read, b"")
        assert 50 <= sum(1 for _ in frames) <= 55  # 50 frames of 20 ms, and the encoder's lead-in
    finally:
        source.cleanup()
