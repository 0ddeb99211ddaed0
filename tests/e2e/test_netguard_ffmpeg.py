"""FFmpeg with our input options, through the network guard (issue 15, findings 1 and build item 8).

Each test runs every FFmpeg present: imageio-ffmpeg's (what tests use) and the system ``ffmpeg``
when there is one (Debian's in the voice task image; its CI job runs this file there). A canary
server outside the guard's allowance counts every connection; it must stay at zero. The baseline
runs (the options as they were, without ``-http_proxy``) show the same request did reach it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import certifi
import imageio_ffmpeg
import pytest

from tests.support.emulator.tls import TlsMaterial, make_tls
from tests.support.media import tone_file
from tests.support.netguard_servers import CanaryServer, RouteServer
from timmybot import netguard
from timmybot.sources.models import StreamInfo


def _binaries() -> list[object]:
    found: list[object] = [pytest.param(imageio_ffmpeg.get_ffmpeg_exe(), id="imageio-ffmpeg")]
    system = shutil.which("ffmpeg")
    # The image's CI job sets TIMMYBOT_REQUIRE_SYSTEM_FFMPEG: there a missing ffmpeg fails, never skips.
    required = bool(os.environ.get("TIMMYBOT_REQUIRE_SYSTEM_FFMPEG"))
    skip = pytest.mark.skipif(system is None and not required, reason="no system ffmpeg")
    found.append(pytest.param(system or "ffmpeg", id="system-ffmpeg", marks=skip))
    return found


@pytest.fixture(params=_binaries())
def ffmpeg(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls(tmp_path_factory.mktemp("netguard-tls"))


@pytest.fixture
def canary(tls: TlsMaterial) -> Iterator[CanaryServer]:
    with CanaryServer(tls.server_context()) as server:
        yield server


@pytest.fixture
def plain_canary() -> Iterator[CanaryServer]:
    with CanaryServer() as server:
        yield server


@pytest.fixture
def site(tls: TlsMaterial) -> Iterator[RouteServer]:
    """An allowed https server (trusted through the test CA), standing in for a media CDN."""
    with RouteServer(tls.server_context()) as server:
        server.file("/tone.webm", tone_file(440, 1, "webm"))
        yield server


def _play(
    ffmpeg: str, url: str, *, proxy: str | None, ca_file: str | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """FFmpeg reading ``url`` the way the voice task does (same input options), decoding to nowhere."""
    before = StreamInfo(url).ffmpeg_before_options(proxy=proxy, ca_file=ca_file)
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *shlex.split(before), "-i", url]
    argv += ["-t", "1", "-f", "null", "-"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, env=env)


def test_playback_through_the_guard_works_and_verifies_tls(ffmpeg: str, site: RouteServer, tls: TlsMaterial) -> None:
    result = _play(ffmpeg, site.url("/tone.webm"), proxy=netguard.guard_proxy_url(), ca_file=str(tls.ca_file))
    assert result.returncode == 0, result.stderr
    assert site.paths == ["/tone.webm"]


def test_an_untrusted_certificate_is_refused(ffmpeg: str, site: RouteServer) -> None:
    """FFmpeg 5.1 (Debian) does not verify by default; with -tls_verify 1 and a real CA bundle it must."""
    result = _play(ffmpeg, site.url("/tone.webm"), proxy=netguard.guard_proxy_url(), ca_file=certifi.where())
    assert result.returncode != 0
    assert site.paths == []


def test_a_redirect_to_the_canary_is_refused(
    ffmpeg: str, site: RouteServer, canary: CanaryServer, tls: TlsMaterial
) -> None:
    for host in ("127.0.0.1", "localhost"):
        start = site.redirect(f"/to-{host}", canary.url("/latest/meta-data/", host=host))
        result = _play(ffmpeg, start, proxy=netguard.guard_proxy_url(), ca_file=str(tls.ca_file))
        assert result.returncode != 0
    assert canary.connections == 0
    # Baseline: the options as they were (no proxy) follow the same redirect straight to it.
    _play(ffmpeg, start, proxy=None, ca_file=str(tls.ca_file))
    assert canary.connections >= 1


def test_an_https_to_http_downgrade_is_refused(
    ffmpeg: str, site: RouteServer, plain_canary: CanaryServer, tls: TlsMaterial
) -> None:
    start = site.redirect("/down", plain_canary.url("/latest/meta-data/"))
    result = _play(ffmpeg, start, proxy=netguard.guard_proxy_url(), ca_file=str(tls.ca_file))
    assert result.returncode != 0
    assert plain_canary.connections == 0


def test_an_hls_segment_pointing_at_the_canary_is_refused(
    ffmpeg: str, site: RouteServer, canary: CanaryServer, tls: TlsMaterial
) -> None:
    """FFmpeg's HLS demuxer opens segments itself; they inherit -http_proxy, so the guard checks them.

    They do not inherit -ca_file (FFmpeg 9 verifies them against its default store), so this test
    trusts the test CA through SSL_CERT_FILE, which OpenSSL's default store honours.
    """
    env = {**os.environ, "SSL_CERT_FILE": str(tls.ca_file)}
    site.file("/seg0.ts", _ts_segment(), "video/mp2t")
    playlist = "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            "#EXT-X-TARGETDURATION:2",
            "#EXTINF:1.0,",
            site.url("/seg0.ts"),
            "#EXTINF:1.0,",
            canary.url("/seg1.ts", host="localhost"),
            "#EXTINF:1.0,",
            canary.url("/seg2.ts"),
            "#EXT-X-ENDLIST",
            "",
        ]
    )
    url = site.text("/list.m3u8", playlist, "application/vnd.apple.mpegurl")
    _play(ffmpeg, url, proxy=netguard.guard_proxy_url(), ca_file=str(tls.ca_file), env=env)
    assert "/seg0.ts" in site.paths  # the allowed segment was read through the guard
    assert canary.connections == 0
    # Baseline: without the guard, the demuxer fetches the canary's segments directly.
    _play(ffmpeg, url, proxy=None, ca_file=str(tls.ca_file), env=env)
    assert canary.connections >= 1


def _ts_segment() -> Path:
    path = Path(tone_file(440, 1, "mp3"))
    out = path.with_suffix(".ts")
    if not out.exists():
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(path),
             "-c:a", "aac", "-f", "mpegts", str(out)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    return out
