"""Test/demo-only source: audio files served over HTTP on loopback.

Metadata comes from one ``ffmpeg -i`` probe (duration, codec, and the file's title tag, else the
URL path's file name): no
ffprobe is needed and no yt-dlp generic extractor is ever enabled. It refuses to exist unless
``SourceSettings.allow_local_media`` is true, which no deployed configuration sets.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from timmybot.errors import SourceError, TrackNotFoundError, TrackUnavailableError, UnsupportedUrlError
from timmybot.models import Track

from .base import Source
from .models import LOCAL_PROTOCOL_WHITELIST, Query, QueryKind, SourceSettings, StreamInfo
from .policy import check_url

_log = logging.getLogger(__name__)

LOCAL_SOURCE = "local"

_DURATION_RE = re.compile(r"Duration:\s*(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d+)?)")
_AUDIO_CODEC_RE = re.compile(r"Stream #\S+.*?: Audio: (?P<codec>[A-Za-z0-9_]+)")
_TITLE_RE = re.compile(r"^ {4}title\s*: ?(?P<title>.*)$", re.MULTILINE)  # the input's own tags (4 spaces)
_CODEC_BY_EXTENSION = {
    "webm": "opus",
    "ogg": "opus",
    "opus": "opus",
    "mp3": "mp3",
    "m4a": "aac",
    "aac": "aac",
    "wav": "pcm_s16le",
    "flac": "flac",
}


def ffmpeg_executable() -> str:
    """The ffmpeg binary: imageio-ffmpeg's bundled one, else ffmpeg on PATH."""
    try:
        import imageio_ffmpeg  # noqa: PLC0415 - optional and heavy-ish; only the voice side needs it
    except ImportError:
        found = shutil.which("ffmpeg")
        if found is None:
            raise SourceError("ffmpeg is not installed.") from None
        return found
    return str(imageio_ffmpeg.get_ffmpeg_exe())


class LocalMediaSource(Source):
    """Loopback media files for tests and the offline demo."""

    name = LOCAL_SOURCE
    handles = frozenset({LOCAL_SOURCE})

    def __init__(self, settings: SourceSettings, *, ffmpeg_exe: str | None = None) -> None:
        if not settings.allow_local_media:
            raise ValueError("LocalMediaSource needs SourceSettings(allow_local_media=True): tests/demo only")
        self._settings = settings
        self._ffmpeg_exe = ffmpeg_exe

    def accepts(self, query: Query) -> bool:
        return query.kind is QueryKind.LOCAL

    def resolve(self, query: Query) -> list[Track]:
        if query.kind is not QueryKind.LOCAL:
            raise UnsupportedUrlError()
        url = check_url(query.text, self._settings)
        duration_s, _codec, tagged = self._probe(url)
        path = urlsplit(url).path
        name = PurePosixPath(unquote(path)).name
        title = tagged or PurePosixPath(name).stem or name or "Local track"
        return [
            Track(
                source=LOCAL_SOURCE,
                source_id=path,
                title=title,
                url=url,
                duration_s=duration_s,
                thumbnail=None,
                artist=None,
            )
        ]

    def stream(self, track: Track) -> StreamInfo:
        if track.source != LOCAL_SOURCE:
            raise SourceError(f"I can't stream tracks from {track.source} with this source.")
        url = check_url(track.url, self._settings)
        extension = PurePosixPath(urlsplit(url).path).suffix.lstrip(".").lower() or None
        return StreamInfo(
            stream_url=url,
            http_headers={},
            codec=_CODEC_BY_EXTENSION.get(extension or ""),
            container=extension,
            expires_at=None,
            duration_s=track.duration_s,
            local=True,
        )

    def _probe(self, url: str) -> tuple[int | None, str | None, str | None]:
        """Duration (whole seconds, rounded), audio codec and title tag of ``url`` from ``ffmpeg -i``'s banner."""
        command = [
            self._ffmpeg_exe or ffmpeg_executable(),
            "-hide_banner",
            "-nostdin",
            "-protocol_whitelist",
            LOCAL_PROTOCOL_WHITELIST,
            "-rw_timeout",
            str(int(self._settings.socket_timeout_s * 1_000_000)),
            "-i",
            url,
        ]
        try:
            # ffmpeg exits 1 here ("At least one output file must be specified"): that is expected.
            completed = subprocess.run(  # noqa: PLW1510 - the exit status is meaningless for a probe
                command, capture_output=True, text=True, timeout=self._settings.socket_timeout_s + 5
            )
        except subprocess.TimeoutExpired as exc:
            raise SourceError("The media server did not answer in time.") from exc
        banner = completed.stderr
        if "404" in banner and "Server returned" in banner:
            raise TrackNotFoundError("There is no such file on the media server.")
        codec_match = _AUDIO_CODEC_RE.search(banner)
        if codec_match is None:
            _log.warning("ffmpeg found no audio in %s: %s", url, banner[-300:])
            raise TrackUnavailableError("That file has no audio I can play.")
        duration_match = _DURATION_RE.search(banner)
        duration_s: int | None = None
        if duration_match is not None:
            seconds = (
                int(duration_match.group("h")) * 3600
                + int(duration_match.group("m")) * 60
                + float(duration_match.group("s"))
            )
            duration_s = round(seconds)
        title_match = _TITLE_RE.search(banner)
        title = title_match.group("title").strip() if title_match else None
        return duration_s, codec_match.group("codec"), title or None
