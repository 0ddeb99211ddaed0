"""Media fixtures for end-to-end tests: generated tone files and a loopback HTTP media server.

``tone_file`` makes a short sine tone with the ffmpeg binary shipped by imageio-ffmpeg and caches it
in a temporary directory keyed by its parameters (never in the repository).

``MediaServer`` serves registered files on 127.0.0.1 with HTTP Range support and fault controls that
stand in for a flaky CDN: a status code for every request, a stall after some bytes, or a connection
cut after some bytes followed by a status code for every later request ("403 mid-track").
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

import imageio_ffmpeg

from tests.support.loopback import serve_in_thread
from timmybot import netguard

_log = logging.getLogger(__name__)

ToneFormat = Literal["webm", "mp3", "ogg", "flac"]

#: Codec arguments per container. ``ogg`` is Opus in Ogg (what ``FFmpegOpusAudio`` can copy).
_ENCODE_ARGS: dict[str, list[str]] = {
    "webm": ["-c:a", "libopus", "-b:a", "96k", "-f", "webm"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
    "ogg": ["-c:a", "libopus", "-b:a", "96k", "-f", "ogg"],
    "flac": ["-c:a", "flac", "-f", "flac"],  # lossless: what a quality figure compares against
}

CONTENT_TYPES: dict[str, str] = {
    ".webm": "audio/webm",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
}

_CHUNK = 16 * 1024


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def cache_dir() -> Path:
    """Directory holding generated media (outside the repository)."""
    path = Path(os.environ.get("TIMMYBOT_MEDIA_CACHE", Path(tempfile.gettempdir()) / "timmybot-media-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def tone_file(freq_hz: float, seconds: float, fmt: ToneFormat = "webm", *, stereo: bool = True) -> Path:
    """Return a cached file holding a ``freq_hz`` sine tone lasting ``seconds`` seconds.

    webm: Opus in WebM (like YouTube's itag 251); mp3: MP3 via libmp3lame; ogg: Opus in Ogg.
    Sample rate 48 kHz; the tone's amplitude is ffmpeg's ``sine`` default (1/8 of full scale).
    """
    channels = 2 if stereo else 1
    name = f"tone-{freq_hz:g}hz-{seconds:g}s-{channels}ch.{fmt}"
    source = f"sine=frequency={freq_hz:g}:sample_rate=48000:duration={seconds:g}"
    return _generate(name, source, fmt, channels)


#: A sweep's frequency at position ``t`` seconds is ``SWEEP_START_HZ + SWEEP_HZ_PER_S * t``.
SWEEP_START_HZ = 200.0
SWEEP_HZ_PER_S = 20.0


def titled_tone_file(freq_hz: float, seconds: float, title: str) -> Path:
    """A WebM tone whose title tag is ``title`` (the local source reads it, as yt-dlp reads a page's)."""
    digest = hashlib.sha256(title.encode()).hexdigest()[:16]
    source = f"sine=frequency={freq_hz:g}:sample_rate=48000:duration={seconds:g}"
    name = f"tone-{freq_hz:g}hz-{seconds:g}s-titled-{digest}.webm"
    return _generate(name, source, "webm", 2, ("-metadata", f"title={title}"))


def signal_file(name: str, expression: str, seconds: float, fmt: ToneFormat = "webm") -> Path:
    """A stereo file of ``expression`` (an ``aevalsrc`` expression in ``t``: ``left|right``, or one for
    both channels), cached as ``name``: chords, panned tones, levels a test chooses."""
    safe = hashlib.sha256(f"{expression}|{seconds:g}".encode()).hexdigest()[:12]
    source = f"aevalsrc={expression}:sample_rate=48000:duration={seconds:g}"
    return _generate(f"signal-{name}-{safe}.{fmt}", source, fmt, 2)


def sweep_file(seconds: float, fmt: ToneFormat = "webm") -> Path:
    """A rising sine sweep whose frequency tells the position: ``SWEEP_START_HZ`` at 0 s, plus
    ``SWEEP_HZ_PER_S`` each second (2 kHz at 90 s). Fault tests read where playback is from it."""
    name = f"sweep-{SWEEP_START_HZ:g}-{SWEEP_HZ_PER_S:g}-{seconds:g}s.{fmt}"
    phase = f"2*PI*({SWEEP_START_HZ:g}*t+{SWEEP_HZ_PER_S / 2:g}*t*t)"
    source = f"aevalsrc=0.125*sin({phase}):sample_rate=48000:duration={seconds:g}"
    return _generate(name, source, fmt, 2)


def _generate(name: str, lavfi_source: str, fmt: ToneFormat, channels: int, extra: tuple[str, ...] = ()) -> Path:
    if fmt not in _ENCODE_ARGS:
        raise ValueError(f"unsupported tone format {fmt!r}")
    target = cache_dir() / name
    if target.exists() and target.stat().st_size > 0:
        return target
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", lavfi_source,
        "-ac", str(channels), *extra, *_ENCODE_ARGS[fmt], str(partial),
    ]  # fmt: skip
    _log.debug("generating tone: %s", cmd)
    proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    os.replace(partial, target)
    return target


@dataclass(frozen=True)
class MediaRequest:
    """One request the media server answered."""

    time: float
    method: str
    name: str
    range: str | None
    status: int
    bytes_sent: int


@dataclass
class _Fault:
    kind: Literal["fail", "stall", "fail_after"]
    status: int = 0
    after_bytes: int = 0
    served: int = 0
    tripped: bool = False
    errors_left: int | None = None  # fail_after: how many error answers before the file works again


@dataclass
class _Entry:
    data: bytes
    content_type: str


@dataclass
class _ServerState:
    entries: dict[str, _Entry] = field(default_factory=dict)
    faults: dict[str, _Fault] = field(default_factory=dict)
    log: list[MediaRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    first_byte_delay_s: float = 0.0  # a CDN's time to first byte, before every answer


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Return the inclusive byte range asked for, or None when it cannot be satisfied."""
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            return None
        return max(size - length, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


class _Handler(BaseHTTPRequestHandler):
    server: _MediaHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("media server: " + format, *args)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _record(self, name: str, status: int, sent: int) -> None:
        state = self.server.state
        with state.lock:
            state.log.append(
                MediaRequest(time.monotonic(), self.command, name, self.headers.get("Range"), status, sent)
            )

    def _error(self, name: str, status: int) -> None:
        body = f"{status} {HTTPStatus(status).phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record(name, status, 0)

    def _serve(self, *, head: bool) -> None:
        state = self.server.state
        name = unquote(urlsplit(self.path).path.lstrip("/"))
        if state.first_byte_delay_s > 0:
            time.sleep(state.first_byte_delay_s)
        with state.lock:
            entry = state.entries.get(name)
            fault = state.faults.get(name)
        if entry is None:
            self._error(name, 404)
            return
        if fault is not None and fault.kind == "fail_after" and fault.tripped and fault.errors_left is not None:
            with state.lock:
                if fault.errors_left <= 0:
                    state.faults.pop(name, None)  # like a freshly signed URL: it works again
                    fault = None
                else:
                    fault.errors_left -= 1
        if fault is not None and (fault.kind == "fail" or (fault.kind == "fail_after" and fault.tripped)):
            self._error(name, fault.status)
            return

        size = len(entry.data)
        start, end, status = 0, size - 1, 200
        range_header = self.headers.get("Range")
        if range_header:
            parsed = _parse_range(range_header, size)
            if parsed is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self._record(name, 416, 0)
                return
            start, end = parsed
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", entry.content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            self._record(name, status, 0)
            return
        sent = self._send_body(entry.data, start, end + 1, fault)
        self._record(name, status, sent)

    def _send_body(self, data: bytes, start: int, stop: int, fault: _Fault | None) -> int:
        state = self.server.state
        sent = 0
        pos = start
        try:
            while pos < stop:
                chunk_end = min(pos + _CHUNK, stop)
                if fault is not None and fault.kind in ("stall", "fail_after"):
                    with state.lock:
                        budget = fault.after_bytes - fault.served
                    if budget <= 0:
                        if fault.kind == "stall":
                            _log.debug("media server: stalling %s at %d bytes", self.path, pos)
                            state.release.wait()
                            self.close_connection = True
                            return sent
                        with state.lock:
                            fault.tripped = True
                        _log.debug("media server: cutting %s at %d bytes", self.path, pos)
                        self.close_connection = True
                        return sent
                    chunk_end = min(chunk_end, pos + budget)
                self.wfile.write(data[pos:chunk_end])
                if fault is not None:
                    with state.lock:
                        fault.served += chunk_end - pos
                sent += chunk_end - pos
                pos = chunk_end
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            _log.debug("media server: client went away from %s after %d bytes", self.path, sent)
            self.close_connection = True
        return sent


class _MediaHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: _ServerState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def handle_error(self, request: object, client_address: object) -> None:
        """A player that hangs up mid-request (FFmpeg killed on skip or stop) is normal, not an error."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            _log.debug("media server: client %s went away: %s", client_address, error)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class MediaServer:
    """A loopback HTTP server for media files with Range support and fault injection.

    Usage::

        with MediaServer() as media:
            media.add("a.webm", tone_file(440, 3, "webm"))
            url = media.url_for("a.webm")
            media.fail_after("a.webm", 20_000, 403)
    """

    def __init__(self) -> None:
        self._state = _ServerState()
        self._server: _MediaHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._allowance = ""

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> MediaServer:
        if self._server is not None:
            return self
        self._state.release.clear()
        self._server = _MediaHTTPServer(self._state)
        self._thread = serve_in_thread(self._server, "media-server")
        # The network guard lets this test server through while it runs (its exact port only).
        self._allowance = f"127.0.0.1:{self.port}"
        netguard.configure(allow=[self._allowance])
        _log.debug("media server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        netguard.revoke(self._allowance)
        self._state.release.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("media server not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # content -----------------------------------------------------------------------------------
    def add(self, name: str, path: Path | str, content_type: str | None = None) -> str:
        """Register a file under ``name``; returns its URL."""
        path = Path(path)
        ctype = content_type or CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        return self.add_bytes(name, path.read_bytes(), ctype)

    def add_bytes(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        with self._state.lock:
            self._state.entries[name] = _Entry(data, content_type)
        return self.url_for(name)

    def url_for(self, name: str) -> str:
        return f"{self.base_url}/{quote(name)}"

    # faults ------------------------------------------------------------------------------------
    def set_first_byte_delay(self, seconds: float) -> None:
        """Wait ``seconds`` before answering any request (a real CDN takes ~150 ms to its first byte)."""
        self._state.first_byte_delay_s = seconds

    def fail(self, name: str, status: int = 404) -> None:
        """Answer every request for ``name`` with ``status`` (e.g. 403, 404)."""
        with self._state.lock:
            self._state.faults[name] = _Fault("fail", status=status)

    def stall(self, name: str, after_bytes: int) -> None:
        """Send ``after_bytes`` bytes of ``name`` (counted over all requests), then hang.

        The connection stays open without data until ``clear_faults()`` or ``stop()``.
        """
        self._state.release.clear()
        with self._state.lock:
            self._state.faults[name] = _Fault("stall", after_bytes=after_bytes)

    def fail_after(self, name: str, nbytes: int, status: int = 403, *, times: int | None = None) -> None:
        """Serve ``nbytes`` of ``name`` (over all requests), cut the connection, then answer ``status``.

        With ``times`` the error is answered that many times, then the file is served again (what a
        re-resolved, freshly signed stream URL looks like); without it, every later request fails.
        """
        with self._state.lock:
            self._state.faults[name] = _Fault("fail_after", status=status, after_bytes=nbytes, errors_left=times)

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()
        self._state.release.set()

    # inspection --------------------------------------------------------------------------------
    def requests(self, name: str | None = None) -> list[MediaRequest]:
        with self._state.lock:
            return [r for r in self._state.log if name is None or r.name == name]

    @contextlib.contextmanager
    def serving(self, name: str, path: Path | str) -> Iterator[str]:
        """Register ``path`` as ``name`` for the duration of a ``with`` block."""
        url = self.add(name, path)
        try:
            yield url
        finally:
            with self._state.lock:
                self._state.entries.pop(name, None)
