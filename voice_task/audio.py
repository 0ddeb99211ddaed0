"""FFmpeg audio sources for a track: Opus pass-through when possible, re-encode otherwise."""

from __future__ import annotations

import enum
import functools
import logging
import os
import shlex
import shutil
import threading
from collections.abc import Callable

import discord

from timmybot import netguard
from timmybot.sources.models import StreamInfo

_log = logging.getLogger(__name__)

OPUS_BITRATE_KBPS = 128
STDERR_TAIL_BYTES = 4096
FRAME_MS = 20
#: A stream that stops this close to the track's end has simply ended (lengths are rounded).
EARLY_END_TOLERANCE_MS = 3000
#: The one frame DAVE passes through unencrypted; sent while the call cannot encrypt yet.
OPUS_SILENCE = b"\xf8\xff\xfe"
_OGG_HEADERS = (b"OpusHead", b"OpusTags")


class StderrTail:
    """Keeps the last few KB FFmpeg wrote to stderr, so a failure can be classified (403, 404…)."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self._limit = limit
        self._data = bytearray()
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self._lock:
            self._data += data
            del self._data[: -self._limit]
        return len(data)

    def flush(self) -> None:
        """File-like no-op."""

    def text(self) -> str:
        with self._lock:
            return self._data.decode(errors="replace")


class StreamFailure(enum.Enum):
    """Why a stream ended before its track did."""

    EXPIRED = "expired"  # 403 / an expired signed URL: resolve again and continue
    GONE = "gone"  # 404 / 410: skip the track
    BROKEN = "broken"  # anything else: one more try, then skip


def classify_failure(stderr: str, error: Exception | None) -> StreamFailure:
    text = f"{stderr}\n{error or ''}"
    if "403" in text or "Forbidden" in text or "expired" in text.lower():
        return StreamFailure.EXPIRED
    if "404" in text or "410" in text or "Not Found" in text:
        return StreamFailure.GONE
    return StreamFailure.BROKEN


@functools.cache
def ffmpeg_executable(configured: str = "") -> str:
    """The configured ffmpeg, else one on PATH, else the binary shipped in imageio-ffmpeg."""
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # noqa: PLC0415 - only when no system ffmpeg exists

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _ignore_no_proxy() -> None:
    """FFmpeg skips ``-http_proxy`` for hosts in ``no_proxy``: the voice task's FFmpeg never gets one."""
    for name in ("no_proxy", "NO_PROXY"):
        os.environ.pop(name, None)


def uses_copy_path(stream: StreamInfo, volume: int) -> bool:
    """Opus input at volume 100 is sent untouched (no decode, no encode)."""
    return stream.is_opus and volume == 100


def build_source(
    stream: StreamInfo, *, position_ms: int, volume: int, executable: str, stderr: StderrTail | None = None
) -> discord.FFmpegOpusAudio:
    """An FFmpegOpusAudio for ``stream`` starting at ``position_ms`` with ``volume`` percent.

    The protocol whitelist and reconnect options come from the stream; a seek is an input seek
    (``-ss`` before ``-i``) so FFmpeg skips ahead without decoding. The stream URL is checked once
    more (``netguard.check_stream_url``) and FFmpeg reads it through the network guard (or the
    operator's upstream proxy), verifying TLS against the system CA bundle.
    Raises ``netguard.StreamUrlRefused`` for a URL FFmpeg must not open.
    """
    netguard.check_stream_url(stream.stream_url)
    _ignore_no_proxy()
    before = stream.ffmpeg_before_options(
        proxy=stream.proxy or netguard.guard_proxy_url(), ca_file=netguard.ca_bundle()
    )
    if position_ms > 0:
        before = f"-ss {position_ms / 1000:.3f} {before}"
    options = "-vn"
    # discord.py maps "opus"/"libopus"/"copy" to stream copy and anything else (None) to a libopus encode.
    codec: str | None = "copy"
    if not uses_copy_path(stream, volume):
        codec = None
        options += f" -af {shlex.quote(f'volume={volume / 100:.2f}')}"
    _log.debug("ffmpeg source codec=%s position_ms=%s volume=%s", codec, position_ms, volume)
    return discord.FFmpegOpusAudio(
        stream.stream_url,
        codec=codec,
        bitrate=OPUS_BITRATE_KBPS,
        executable=executable,
        before_options=before,
        options=options,
        stderr=stderr,  # type: ignore[arg-type]  # any object with write() is piped by a reader thread
    )


class TrackSource(discord.AudioSource):
    """One track as the player reads it, frame by frame.

    - While ``may_send()`` is False (DAVE cannot encrypt yet), it yields the Opus silence frame and
      leaves FFmpeg unread, so the track's position does not move and nothing is lost.
    - It skips the Ogg ``OpusHead``/``OpusTags`` packets ``FFmpegOpusAudio`` yields first: they are
      not audio, and a listener's decoder would get two broken frames per track.
    - ``position_ms`` counts the frames that actually went out, not wall-clock time.
    """

    def __init__(
        self,
        inner: discord.FFmpegOpusAudio,
        *,
        start_ms: int,
        may_send: Callable[[], bool],
        entry_id: str = "",
        duration_ms: int | None = None,
        stderr: StderrTail | None = None,
    ) -> None:
        self._inner = inner
        self.start_ms = start_ms
        self._may_send = may_send
        self.entry_id = entry_id
        self.duration_ms = duration_ms
        self.stderr = stderr or StderrTail()
        self.frames = 0
        self.held_frames = 0

    def is_opus(self) -> bool:
        return True

    @property
    def position_ms(self) -> int:
        return self.start_ms + self.frames * FRAME_MS

    @property
    def _current_error(self) -> Exception | None:
        """discord.py's player reads this to report an FFmpeg failure to the after-callback."""
        error = getattr(self._inner, "_current_error", None)
        return error if isinstance(error, Exception) else None

    def read(self) -> bytes:
        if not self._may_send():
            self.held_frames += 1
            return OPUS_SILENCE
        frame = self._inner.read()
        while self.frames == 0 and frame.startswith(_OGG_HEADERS):
            frame = self._inner.read()
        if frame:
            self.frames += 1
        return frame

    def ended_naturally(self) -> bool:
        """The stream ran out because the track did (not a broken or expired stream)."""
        text = self.stderr.text()
        if "Server returned" in text or "HTTP error" in text or self._current_error is not None:
            return False
        if not self.duration_ms:
            return True  # a live stream or an unknown length: nothing to compare with
        remaining = self.duration_ms - self.position_ms
        return remaining <= min(EARLY_END_TOLERANCE_MS, self.duration_ms // 4)

    def cleanup(self) -> None:
        self._inner.cleanup()
