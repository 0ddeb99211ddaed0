"""The /play URL policy (SSRF defence): only exact allowed hosts over https, nothing clever."""

from __future__ import annotations

import pytest

from timmybot.errors import InvalidInputError, UnsupportedUrlError
from timmybot.sources import QueryKind, SourceSettings, check_track_url, check_url, classify_query

DEFAULT = SourceSettings()
LOCAL = SourceSettings(allow_local_media=True)

HOSTILE_URLS: list[tuple[str, str]] = [
    # other schemes
    ("plain-http", "http://www.youtube.com/watch?v=dQw4w9WgXcQ"),
    ("file", "file:///etc/passwd"),
    ("ftp", "ftp://youtube.com/x"),
    ("data", "data:text/html,<script>alert(1)</script>"),
    ("javascript", "javascript:alert(1)"),
    ("gopher", "gopher://127.0.0.1:6379/_INFO"),
    ("scheme-relative", "//youtube.com/watch?v=dQw4w9WgXcQ"),
    ("no-scheme-slashes", "https:youtube.com/watch?v=dQw4w9WgXcQ"),
    # IP literals in every notation
    ("dotted-loopback", "https://127.0.0.1/"),
    ("decimal-ip", "http://2130706433/"),
    ("decimal-ip-https", "https://2130706433/"),
    ("hex-ip", "https://0x7f000001/"),
    ("octal-ip", "https://0177.0.0.1/"),
    ("short-ip", "https://127.1/"),
    ("ipv6-loopback", "https://[::1]/"),
    ("ipv4-mapped-ipv6", "https://[::ffff:169.254.169.254]/"),
    ("aws-imds", "https://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    ("ecs-credentials", "https://169.254.170.2/v2/credentials/"),
    ("aws-imds-ipv6", "https://[fd00:ec2::254]/latest/meta-data/"),
    ("private-10", "https://10.0.0.1/"),
    ("private-192", "https://192.168.1.1/"),
    ("zero-host", "https://0.0.0.0/"),
    # user info and parser differentials
    ("userinfo-at", "https://youtube.com@evil.com/watch?v=dQw4w9WgXcQ"),
    ("userinfo-password", "https://user:pass@youtube.com/watch?v=dQw4w9WgXcQ"),
    ("fragment-at", "https://evil.com#@youtube.com"),
    ("query-at", "https://evil.com?@youtube.com/"),
    ("backslash-at", "https://youtube.com\\@evil.com/"),
    ("backslash-path", "https://evil.com\\youtube.com/"),
    # lookalike hosts
    ("suffix-domain", "https://youtube.com.evil.com/watch?v=dQw4w9WgXcQ"),
    ("path-host", "https://evil.com/youtube.com"),
    ("lookalike-tld", "https://youtube.com.evil/watch"),
    ("hyphen-lookalike", "https://yout-ube.com/watch?v=dQw4w9WgXcQ"),
    ("prefix-lookalike", "https://notyoutube.com/watch?v=dQw4w9WgXcQ"),
    ("unlisted-subdomain", "https://evil.youtube.com/watch?v=dQw4w9WgXcQ"),
    ("nocookie-host", "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"),
    ("punycode", "https://xn--youtub-cxa.com/watch?v=dQw4w9WgXcQ"),
    ("punycode-subdomain", "https://xn--80ak6aa92e.youtube.com/"),
    ("cyrillic-confusable", "https://youtubе.com/watch?v=dQw4w9WgXcQ"),
    ("fullwidth-dot", "https://youtube。com/watch?v=dQw4w9WgXcQ"),
    ("trailing-dot", "https://youtube.com./watch?v=dQw4w9WgXcQ"),
    ("percent-encoded-host", "https://%79outube.com/watch?v=dQw4w9WgXcQ"),
    # ports, whitespace, control characters, length
    ("explicit-port", "https://youtube.com:443/watch?v=dQw4w9WgXcQ"),
    ("odd-port", "https://youtube.com:8080/watch?v=dQw4w9WgXcQ"),
    ("empty-port", "https://youtube.com:/watch?v=dQw4w9WgXcQ"),
    ("inner-space", "https://you tube.com/watch"),
    ("tab", "https://youtube.com/watch?v=dQw4w9WgXcQ\t"),
    ("newline", "https://youtube.com/watch?v=dQw\n4w9WgXcQ"),
    ("null-byte", "https://youtube.com\x00.evil.com/"),
    ("overlong", "https://www.youtube.com/watch?v=dQw4w9WgXcQ&x=" + "a" * 3000),
    ("empty-host", "https:///watch?v=dQw4w9WgXcQ"),
    # loopback fixture URLs are refused under default settings
    ("loopback-fixture-default-settings", "http://127.0.0.1:8080/tone.webm"),
    ("localhost-name", "http://localhost:8080/tone.webm"),
]


@pytest.mark.parametrize("url", [u for _, u in HOSTILE_URLS], ids=[i for i, _ in HOSTILE_URLS])
def test_hostile_url_is_refused_with_a_sentence(url: str) -> None:
    # GIVEN default settings
    # WHEN the URL is checked THEN it is refused with a sentence the user can read
    with pytest.raises(UnsupportedUrlError) as caught:
        check_url(url, DEFAULT)
    assert caught.value.user_message.endswith(".")
    assert "YouTube" in caught.value.user_message


def test_hostile_table_is_large_enough_and_ids_are_unique() -> None:
    ids = [case_id for case_id, _ in HOSTILE_URLS]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "http://169.254.170.2/v2/credentials/",
        "http://[::1]:8080/tone.webm",
        "http://10.0.0.5:8080/tone.webm",
        "http://127.0.0.1/tone.webm",
        "http://127.0.0.1:0/tone.webm",
        "http://127.0.0.1:99999/tone.webm",
        "http://user@127.0.0.1:8080/tone.webm",
        "https://127.0.0.1:8080/tone.webm",
        "http://2130706433:8080/tone.webm",
        "http://evil.com:8080/tone.webm",
    ],
    ids=[
        "imds", "ecs-credentials", "ipv6-loopback", "private", "no-port", "port-zero", "port-too-big",
        "userinfo", "https-loopback", "decimal-loopback", "other-host",
    ],
)
def test_local_media_mode_still_refuses_everything_but_the_exact_loopback_hosts(url: str) -> None:
    # GIVEN local media enabled (tests/demo) WHEN a non-fixture URL is checked THEN it is refused
    with pytest.raises(UnsupportedUrlError):
        check_url(url, LOCAL)


ALLOWED: list[tuple[str, str, str]] = [
    ("youtube-watch", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
    ("youtube-bare", "https://youtube.com/watch?v=dQw4w9WgXcQ", "https://youtube.com/watch?v=dQw4w9WgXcQ"),
    ("youtube-mobile", "https://m.youtube.com/watch?v=dQw4w9WgXcQ", "https://m.youtube.com/watch?v=dQw4w9WgXcQ"),
    ("upper-case", "HTTPS://WWW.YouTube.COM/watch?v=dQw4w9WgXcQ", "https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
    ("fragment-dropped", "https://youtu.be/dQw4w9WgXcQ#t=30", "https://youtu.be/dQw4w9WgXcQ"),
    ("empty-path", "https://youtu.be", "https://youtu.be/"),
    ("yt-music", "https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDAMVM", "https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDAMVM"),
    ("youtube-playlist", "https://www.youtube.com/playlist?list=PL1234567890", "https://www.youtube.com/playlist?list=PL1234567890"),
    ("soundcloud", "https://soundcloud.com/artist/song", "https://soundcloud.com/artist/song"),
    ("soundcloud-www", "https://www.soundcloud.com/artist/sets/album", "https://www.soundcloud.com/artist/sets/album"),
    ("soundcloud-mobile", "https://m.soundcloud.com/artist/song", "https://m.soundcloud.com/artist/song"),
    ("soundcloud-short", "https://on.soundcloud.com/AbCdE", "https://on.soundcloud.com/AbCdE"),
    ("spotify", "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=abc", "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=abc"),
]


@pytest.mark.parametrize(("url", "normalized"), [(u, n) for _, u, n in ALLOWED], ids=[i for i, _, _ in ALLOWED])
def test_allowed_url_is_normalized(url: str, normalized: str) -> None:
    # GIVEN default settings WHEN an allowed link is checked THEN its normalized form comes back
    assert check_url(url, DEFAULT) == normalized


def test_default_settings_refuse_the_loopback_fixture_but_local_mode_accepts_it() -> None:
    # GIVEN the fixture URL the e2e tests serve
    url = "http://127.0.0.1:8080/tone.webm"
    # WHEN checked with default settings THEN it is refused
    with pytest.raises(UnsupportedUrlError):
        classify_query(url, SourceSettings())
    # WHEN checked with local media enabled THEN it routes to the local source
    query = classify_query(url, SourceSettings(allow_local_media=True))
    assert query.kind is QueryKind.LOCAL
    assert query.text == url


def test_local_media_is_off_by_default() -> None:
    assert SourceSettings().allow_local_media is False


@pytest.mark.parametrize(
    ("text", "kind", "source_id"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", QueryKind.YOUTUBE, "dQw4w9WgXcQ"),
        ("youtu.be/dQw4w9WgXcQ", QueryKind.YOUTUBE, "dQw4w9WgXcQ"),
        ("https://www.youtube.com/shorts/dQw4w9WgXcQ", QueryKind.YOUTUBE, "dQw4w9WgXcQ"),
        ("https://www.youtube.com/playlist?list=PL1234567890", QueryKind.YOUTUBE, None),
        ("https://soundcloud.com/artist/song", QueryKind.SOUNDCLOUD, None),
        ("https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC", QueryKind.SPOTIFY_TRACK, "4uLU6hMCjMI75M1A2tKUQC"),
        (
            "https://open.spotify.com/intl-de/album/1DFixLWuPkv3KT3TnV35m3",
            QueryKind.SPOTIFY_ALBUM,
            "1DFixLWuPkv3KT3TnV35m3",
        ),
        (
            "https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M?si=1",
            QueryKind.SPOTIFY_PLAYLIST,
            "37i9dQZF1DXcBWIGoYBM5M",
        ),
        ("never gonna give you up", QueryKind.SEARCH, None),
        ("  daft   punk  ", QueryKind.SEARCH, None),
        ("Re:Zero opening", QueryKind.SEARCH, None),
        ("mr.brightside", QueryKind.SEARCH, None),
        ("ytsearch5:something", QueryKind.SEARCH, None),
    ],
)
def test_query_is_classified_as_link_or_search(text: str, kind: QueryKind, source_id: str | None) -> None:
    # WHEN a /play argument is classified THEN the kind and any id readable offline come out
    query = classify_query(text, DEFAULT)
    assert query.kind is kind
    assert query.source_id == source_id


def test_search_words_are_collapsed_and_kept_verbatim() -> None:
    assert classify_query("  daft   punk  ", DEFAULT).text == "daft punk"


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "evil.com/watch?v=x",
        "//evil.com/x",
        "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
    ],
)
def test_link_like_input_is_policy_checked_not_searched(text: str) -> None:
    # WHEN the input is plainly a link to something we don't play THEN it is refused, not searched
    with pytest.raises(UnsupportedUrlError):
        classify_query(text, DEFAULT)


def test_spotify_artist_links_are_refused_with_what_is_supported() -> None:
    with pytest.raises(UnsupportedUrlError, match="track, album and playlist"):
        classify_query("https://open.spotify.com/artist/0gxyHStUsqpMadRV0Di1Qt", DEFAULT)


def test_query_over_the_limit_is_refused_with_the_limit() -> None:
    # GIVEN a 201-character search under the 200-character default
    text = "a" * 201
    # WHEN classified THEN the user reads the limit
    with pytest.raises(InvalidInputError, match="200 characters"):
        classify_query(text, DEFAULT)


def test_query_at_the_limit_is_accepted() -> None:
    assert classify_query("a" * 200, DEFAULT).kind is QueryKind.SEARCH


def test_limit_follows_the_settings() -> None:
    with pytest.raises(InvalidInputError, match="10 characters"):
        classify_query("eleven char", SourceSettings(max_query_chars=10))


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_query_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        classify_query(text, DEFAULT)


def test_search_with_control_characters_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        classify_query("daft\x00punk", DEFAULT)


def test_stored_soundcloud_api_track_url_is_allowed_at_play_time_but_not_from_play() -> None:
    # GIVEN the API URL SoundCloud sets use for some entries
    url = "https://api-v2.soundcloud.com/tracks/123456"
    # THEN /play refuses it, while a stored track may still name it
    with pytest.raises(UnsupportedUrlError):
        check_url(url, DEFAULT)
    assert check_track_url(url, DEFAULT) == url
