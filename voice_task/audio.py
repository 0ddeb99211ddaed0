"""FFmpeg audio sources for a track: Opus pass-through when possible, re-encode otherwise.

The re-encode path (another codec, a volume other than 100, a filter) decodes and resamples once
to 48 kHz stereo, runs the one ``-af`` chain (``timmybot.filters.audio_filter_chain``) and encodes
Opus in FFmpeg with settings chosen for Discord (``ENCODER_OPTIONS``): 20 ms frames (what a voice
packet carries), application "audio" (music, not speech), complexity 10 (libopus's highest, as
discord.py's own encoder), inband FEC for an expected loss of ``EXPECTED_LOSS_PERCENT`` and the
voice channel's own bitrate (a listener never receives more than the channel's bitrate anyway).

``python -m voice_task.audio --required-filters`` prints every FFmpeg filter the chain may use.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable

import discord

from timmybot import netguard
from timmybot.filters import Filters, audio_filter_chain, required_filters
from timmybot.sources.models import StreamInfo

_log = logging.getLogger(__name__)

#: The bitrate when the channel's is unknown (discord.py's own default).
OPUS_BITRATE_KBPS = 128
#: Opus accepts 6–510 kbps; Discord's channels range from 8 to 384 kbps.
OPUS_BITRATE_MIN_KBPS = 8
OPUS_BITRATE_MAX_KBPS = 510
#: discord.py asks FFmpeg for FEC at 15 % expected loss, which makes libopus encode every frame
#: about twice as hard; 5 % keeps inband FEC for the occasional lost packet at half the CPU.
EXPECTED_LOSS_PERCENT = 5
OPUS_COMPLEXITY = 10
STDERR_TAIL_BYTES = 4096
FRAME_MS = 20
#: A stream that stops this close to the track's end has simply ended (lengths are rounded).
EARLY_END_TOLERANCE_MS = 3000
#: How long an empty write to ``StderrTail`` waits: the stderr reader's pace once FFmpeg has exited.
EOF_PAUSE_S = 0.1
#: The one frame DAVE passes through unencrypted; sent while the call cannot encrypt yet.
OPUS_SILENCE = b"\xf8\xff\xfe"
_OGG_HEADERS = (b"OpusHead", b"OpusTags")


class StderrTail:
    """Keeps the last few KB FFmpeg wrote to stderr, so a failure can be classified (403, 404…).

    discord.py copies FFmpeg's stderr here from a reader thread that stops only when the source is
    cleaned up: after FFmpeg exits, each read returns at once with nothing, and that thread hands
    this object an empty write in a tight loop. FFmpeg exits seconds before its track ends (the
    rest of the track waits in the pipe), so without a pause that loop would take a whole core for
    those seconds at every track's end, on a task that may have a quarter of a vCPU. An empty write
    therefore waits ``EOF_PAUSE_S`` before it returns.
    """

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self._limit = limit
        self._data = bytearray()
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        if not data:
            time.sleep(EOF_PAUSE_S)  # discord.py's reader at end of file (see the class docstring)
            return 0
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


def uses_copy_path(stream: StreamInfo, volume: int, filters: Filters | None = None) -> bool:
    """Opus input at volume 100 with no filter is sent untouched (no decode, no encode)."""
    return stream.is_opus and volume == 100 and (filters is None or filters.is_off)


def channel_bitrate_kbps(bitrate_bps: int | None) -> int:
    """The encoder bitrate for a voice channel's ``bitrate`` (bits per second; None: unknown)."""
    if not bitrate_bps:
        return OPUS_BITRATE_KBPS
    return max(OPUS_BITRATE_MIN_KBPS, min(OPUS_BITRATE_MAX_KBPS, bitrate_bps // 1000))


def encoder_options() -> str:
    """FFmpeg's libopus settings for the re-encode path (they follow discord.py's own, overriding them)."""
    return (
        f"-application audio -frame_duration {FRAME_MS} -compression_level {OPUS_COMPLEXITY} "
        f"-fec true -packet_loss {EXPECTED_LOSS_PERCENT}"
    )


#: How far before a copy-path seek FFmpeg's input seek lands at most: a WebM input seek lands on
#: the cluster at or before the target (clusters run about 5 s), and stream copy does not decode
#: forward from there, so the rest is skipped by an output seek, packet by packet (20 ms).
COPY_SEEK_MARGIN_MS = 15_000


def seek_split(position_ms: int, *, copy: bool) -> tuple[int, int]:
    """(input seek, output seek) in ms for a start at ``position_ms``. A re-encode decodes from the
    input seek to the exact point itself; stream copy would start at the cluster before it, so it
    seeks its input to ``COPY_SEEK_MARGIN_MS`` before the target and drops the packets up to it."""
    if position_ms <= 0:
        return 0, 0
    if not copy:
        return position_ms, 0
    input_ms = max(0, position_ms - COPY_SEEK_MARGIN_MS)
    return input_ms, position_ms - input_ms


def build_source(
    stream: StreamInfo,
    *,
    position_ms: int,
    volume: int,
    executable: str,
    stderr: StderrTail | None = None,
    filters: Filters | None = None,
    bitrate_kbps: int = OPUS_BITRATE_KBPS,
) -> discord.FFmpegOpusAudio:
    """An FFmpegOpusAudio for ``stream`` starting at ``position_ms`` (source time) with ``volume``
    percent and ``filters``, encoded (when it must be) at ``bitrate_kbps``.

    The protocol whitelist and reconnect options come from the stream; a seek is an input seek
    (``-ss`` before ``-i``), plus on the copy path an output seek for the last stretch
    (``seek_split``), so playback starts at the position asked, not at the cluster before it. The
    stream URL is checked once more (``netguard.check_stream_url``) and FFmpeg reads it through the
    network guard (or the operator's upstream proxy), verifying TLS against the system CA bundle.
    Raises ``netguard.StreamUrlRefused`` for a URL FFmpeg must not open.
    """
    netguard.check_stream_url(stream.stream_url)
    _ignore_no_proxy()
    before = stream.ffmpeg_before_options(
        proxy=stream.proxy or netguard.guard_proxy_url(), ca_file=netguard.ca_bundle()
    )
    copy = uses_copy_path(stream, volume, filters)
    input_seek_ms, output_seek_ms = seek_split(position_ms, copy=copy)
    if input_seek_ms > 0:
        before = f"-ss {input_seek_ms / 1000:.3f} {before}"
    options = "-vn"
    if output_seek_ms > 0:
        options += f" -ss {output_seek_ms / 1000:.3f}"
    # discord.py maps "opus"/"libopus"/"copy" to stream copy and anything else (None) to a libopus encode.
    codec: str | None = "copy"
    chain = ""
    if not copy:
        codec = None
        chain = audio_filter_chain(volume, filters or Filters())
        options += f" {encoder_options()}"
        if chain:
            options += f" -af {shlex.quote(chain)}"
    _log.debug("ffmpeg source codec=%s position_ms=%s chain=%s", codec, position_ms, chain)
    return discord.FFmpegOpusAudio(
        stream.stream_url,
        codec=codec,
        bitrate=bitrate_kbps,
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
    - ``position_ms`` counts the frames that actually went out, not wall-clock time, in source
      time: each 20 ms frame carries ``rate`` × 20 ms of the track (/speed, nightcore…).
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
        rate: float = 1.0,
    ) -> None:
        self._inner = inner
        self.rate = rate
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
        return self.start_ms + round(self.frames * FRAME_MS * self.rate)

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


def main(argv: list[str] | None = None) -> int:
    """``--required-filters``: the FFmpeg filters the chain may use, one a line (for the image's CI)."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["--required-filters"]:
        print("usage: python -m voice_task.audio --required-filters", file=sys.stderr)  # noqa: T201
        return 2
    for name in required_filters():
        print(name)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
