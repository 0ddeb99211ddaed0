"""The stream URL yt-dlp returns is checked again before FFmpeg opens it (issue 15, finding 1)."""

from __future__ import annotations

import pytest

from timmybot import netguard


@pytest.mark.parametrize(
    "url",
    [
        "http://rr1.googlevideo.com/videoplayback?id=1",  # plain http
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/",
        "https://[::ffff:169.254.170.2]/v2/credentials",
        "https://127.0.0.1:8443/a.webm",
        "https://10.0.0.5/a.webm",
        "https://cdn.example/a.webm\r\nX-Injected: 1",
        "https://cdn.example/a\x00.webm",
        "https://cdn.example/a b.webm",
        "https://user:pass@cdn.example/a.webm",
        "file:///etc/passwd",
        "ftp://cdn.example/a.webm",
        "",
    ],
)
def test_refused_stream_urls(url: str) -> None:
    with pytest.raises(netguard.StreamUrlRefused) as refused:
        netguard.check_stream_url(url)
    assert "://" not in str(refused.value)  # the reason never quotes the URL


def test_https_by_name_and_allowed_loopback_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    good = "https://rr3---sn-4g5e6nz7.googlevideo.com/videoplayback?expire=1&id=o-A"
    assert netguard.check_stream_url(good) == good
    monkeypatch.setenv(netguard.ALLOW_ENV, "127.0.0.1:8080")
    assert netguard.check_stream_url("http://127.0.0.1:8080/a.webm") == "http://127.0.0.1:8080/a.webm"
    with pytest.raises(netguard.StreamUrlRefused):
        netguard.check_stream_url("http://127.0.0.1:8081/a.webm")
