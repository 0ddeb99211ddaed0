"""The /play URL policy (SSRF defence): only exact allowed hosts over https, nothing clever."""

from __future__ import annotations

import pytest

from timmybot.errors import InvalidInputError, UnsupportedUrlError
from timmybot.sources import QueryKind, SourceSettings, check_track_url, check_url, classify_query
from timmybot.sources.policy import ALLOWED_HOSTS

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
        "imds",
        "ecs-credentials",
        "ipv6-loopback",
        "private",
        "no-port",
        "port-zero",
        "port-too-big",
        "userinfo",
        "https-loopback",
        "decimal-loopback",
        "other-host",
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
    (
        "yt-music",
        "https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDAMVM",
        "https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDAMVM",
    ),
    (
        "youtube-playlist",
        "https://www.youtube.com/playlist?list=PL1234567890",
        "https://www.youtube.com/playlist?list=PL1234567890",
    ),
    ("soundcloud", "https://soundcloud.com/artist/song", "https://soundcloud.com/artist/song"),
    ("soundcloud-www", "https://www.soundcloud.com/artist/sets/album", "https://www.soundcloud.com/artist/sets/album"),
    ("soundcloud-mobile", "https://m.soundcloud.com/artist/song", "https://m.soundcloud.com/artist/song"),
    ("soundcloud-short", "https://on.soundcloud.com/AbCdE", "https://on.soundcloud.com/AbCdE"),
    (
        "spotify",
        "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=abc",
        "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=abc",
    ),
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
        "spotify:artist:0gxyHStUsqpMadRV0Di1Qt",
        "spotify:track:short",
        "spotify:track:4uLU6hMCjMI75M1A2tKUQC:extra",
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


# ---------------------------------------------------------------------- issue 15: the edges
V = "dQw4w9WgXcQ"
SP = "4uLU6hMCjMI75M1A2tKUQC"
ED = "37i9dQZF1DXcBWIGoYBM5M"  # a Spotify-owned editorial playlist
AL = "1DFixLWuPkv3KT3TnV35m3"

EDGE_HOSTILE_URLS: list[tuple[str, str]] = [
    # YouTube's redirectors and interstitials
    ("yt-redirect", "https://www.youtube.com/redirect?q=https://evil.com/"),
    (
        "yt-redirect-encoded",
        "https://www.youtube.com/redirect?event=video_description&q=https%3A%2F%2F169.254.169.254%2F",
    ),
    ("yt-redirect-upper-case", "https://www.youtube.com/Redirect?q=evil.com"),
    ("yt-redirect-slash", "https://youtube.com/redirect/?q=x"),
    ("yt-redirect-no-param", "https://www.youtube.com/redirect"),
    ("yt-attribution-link", f"https://www.youtube.com/attribution_link?a=abc&u=%2Fwatch%3Fv%3D{V}"),
    ("yt-url", "https://www.youtube.com/url?q=http://127.0.0.1/"),
    ("yt-music-redirect", "https://music.youtube.com/redirect?q=http%3A%2F%2Flocalhost"),
    ("yt-signin-continue", "https://m.youtube.com/signin?continue=https%3A%2F%2Fevil.com"),
    ("yt-supported-browsers", f"https://www.youtube.com/supported_browsers?next_url=%2Fwatch%3Fv%3D{V}"),
    ("yt-short-redirect", "https://youtu.be/redirect?q=https://evil.com"),
    # a URL, a path or a host in a parameter of a page we do play
    ("yt-next-url", f"https://www.youtube.com/watch?v={V}&next=https://evil.com"),
    ("yt-next-url-path", f"https://www.youtube.com/watch?v={V}&next_url=%2Fredirect%3Fq%3Dx"),
    ("yt-continue-host", f"https://www.youtube.com/watch?v={V}&continue=evil.com/x"),
    ("yt-double-encoded-url", f"https://www.youtube.com/watch?v={V}&x=https%253A%252F%252Fevil.com"),
    ("yt-scheme-relative-param", f"https://youtu.be/{V}?u=//evil.com"),
    ("yt-backslash-relative-param", f"https://youtu.be/{V}?u=%5C%5Cevil.com"),
    ("yt-javascript-param", f"https://www.youtube.com/watch?v={V}&foo=javascript:alert(1)"),
    ("yt-url-in-param-name", f"https://www.youtube.com/watch?v={V}&https://evil.com=1"),
    ("sc-redirect", "https://soundcloud.com/-/redirect?url=https://evil.com"),
    ("sc-click", "https://soundcloud.com/-/t/click/abc?url=https%3A%2F%2Fevil.com"),
    ("sc-dash-namespace", "https://m.soundcloud.com/-/anything"),
    ("sc-url-param", "https://soundcloud.com/artist/song?url=https%3A%2F%2F10.0.0.1%2F"),
    ("spotify-continue", f"https://open.spotify.com/track/{SP}?continue=https://evil.com"),
    # control characters, raw and percent-encoded once, twice, three times
    ("encoded-nul-path", f"https://www.youtube.com/watch%00?v={V}"),
    ("encoded-crlf-query", f"https://www.youtube.com/watch?v={V}%0d%0aHost:evil"),
    ("encoded-lf-upper", f"https://www.youtube.com/watch?v={V}%0A"),
    ("encoded-tab", f"https://www.youtube.com/watch?v={V}&t=%09"),
    ("encoded-del", "https://soundcloud.com/artist/song%7f"),
    ("double-encoded-cr", f"https://www.youtube.com/watch?v={V}%250d"),
    ("triple-encoded-lf", f"https://www.youtube.com/watch?v={V}%25250a"),
    ("encoded-crlf-fragment", f"https://youtu.be/{V}#%0d%0aX-Forged:1"),
    ("raw-del", f"https://youtu.be/{V}\x7f"),
    ("encoded-nul-host", "https://youtube.com%00.evil.com/"),
    # more IP notations and IPv6 forms
    ("ipv6-mapped-hex", "https://[::ffff:7f00:1]/"),
    ("ipv6-mapped-long", "https://[0:0:0:0:0:ffff:127.0.0.1]/"),
    ("ipv6-unspecified", "https://[::]/"),
    ("ipv6-zone-id", "https://[fe80::1%25eth0]/"),
    ("ipv6-ula", "https://[fd00::1]/"),
    ("hex-dotted-ip", "https://0x7f.0x0.0x0.0x1/"),
    ("octal-long-ip", "https://017700000001/"),
    ("zero-padded-ip", "https://127.000.000.001/"),
    ("bare-zero-ip", "https://0/"),
    ("cgnat-ip", "https://100.64.0.1/"),
    # unicode and encoded dots, trailing dots, ports
    ("encoded-ideographic-dot", "https://youtube%E3%80%82com/watch"),
    ("one-dot-leader", "https://youtube\u2024com/watch"),
    ("double-trailing-dot", "https://www.youtube.com../watch"),
    ("zero-padded-port", "https://youtube.com:0443/"),
    ("port-out-of-range", "https://youtube.com:65536/"),
    # user info and backslashes
    ("empty-userinfo", "https://:@youtube.com/"),
    ("bare-at", "https://@youtube.com/"),
    ("encoded-at-host", "https://youtube.com%40evil.com/"),
    ("backslash-host", "https://youtube.com\\.evil.com/"),
    # lookalike hosts of the Spotify names
    ("spotify-link-suffix", "https://spotify.link.evil.com/abcd1234"),
    ("open-spotify-suffix", f"https://open.spotify.com.evil.com/track/{SP}"),
    ("spotify-bare", f"https://spotify.com/track/{SP}"),
    ("youtube-co", f"https://youtube.co/watch?v={V}"),
    ("youtube-hyphen-suffix", f"https://youtube.com-evil.com/watch?v={V}"),
    # schemes
    ("wss", "wss://youtube.com/"),
    ("view-source", f"view-source:https://www.youtube.com/watch?v={V}"),
    ("jar", "jar:https://youtube.com/x.jar!/"),
    ("hxxps", f"hxxps://www.youtube.com/watch?v={V}"),
    ("http-spotify-link", "http://spotify.link/abcd1234"),
]


def test_issue_15_table_is_large_enough_and_ids_are_unique() -> None:
    ids = [case_id for case_id, _ in EDGE_HOSTILE_URLS]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("url", [u for _, u in EDGE_HOSTILE_URLS], ids=[i for i, _ in EDGE_HOSTILE_URLS])
def test_redirectors_encoded_controls_and_ssrf_forms_are_refused(url: str) -> None:
    # GIVEN default settings WHEN a hostile form reaches the policy, as a URL or as typed into /play
    # THEN both refuse it with a sentence
    with pytest.raises(UnsupportedUrlError) as caught:
        check_url(url, DEFAULT)
    assert caught.value.user_message.endswith(".")
    with pytest.raises((UnsupportedUrlError, InvalidInputError)):  # raw control characters: the typed-text rule
        classify_query(url, DEFAULT)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/redirect?q=https://evil.com/",
        f"https://www.youtube.com/watch?v={V}%0d%0a",
        "https://soundcloud.com/-/redirect?url=https://evil.com",
    ],
)
def test_a_stored_track_url_gets_the_same_redirect_and_control_rules(url: str) -> None:
    with pytest.raises(UnsupportedUrlError):
        check_track_url(url, DEFAULT)


EDGE_LEGIT: list[tuple[str, str, QueryKind, str | None]] = [
    ("yt-timestamp", f"https://youtu.be/{V}?t=42", QueryKind.YOUTUBE, V),
    ("yt-share-tag", f"https://youtu.be/{V}?si=AbC-dEf_123", QueryKind.YOUTUBE, V),
    ("yt-feature", f"https://www.youtube.com/watch?v={V}&feature=share&pp=ygUJcmljayByb2xs", QueryKind.YOUTUBE, V),
    ("yt-list-index", f"https://www.youtube.com/watch?v={V}&list=PL1234567890&index=3", QueryKind.YOUTUBE, V),
    ("yt-music-search-with-colon", "https://music.youtube.com/search?q=Re%3AZero%20opening", QueryKind.YOUTUBE, None),
    ("yt-redirect-in-a-video-title-path", f"https://www.youtube.com/shorts/{V}", QueryKind.YOUTUBE, V),
    ("sc-user-named-redirect", "https://soundcloud.com/redirect/song", QueryKind.SOUNDCLOUD, None),
    ("sc-secret-token", "https://soundcloud.com/a/b/s-AbCdE?si=abc&utm_source=clipboard", QueryKind.SOUNDCLOUD, None),
    ("spotify-uri-track", f"spotify:track:{SP}", QueryKind.SPOTIFY_TRACK, SP),
    ("spotify-uri-album", f"spotify:album:{AL}", QueryKind.SPOTIFY_ALBUM, AL),
    ("spotify-uri-playlist", f"spotify:playlist:{ED}", QueryKind.SPOTIFY_PLAYLIST, ED),
    ("spotify-uri-legacy-user", f"spotify:user:someone:playlist:{ED}", QueryKind.SPOTIFY_PLAYLIST, ED),
    ("spotify-uri-upper-scheme", f"Spotify:Track:{SP}", QueryKind.SPOTIFY_TRACK, SP),
    ("spotify-intl-lang", f"https://open.spotify.com/intl-de/track/{SP}", QueryKind.SPOTIFY_TRACK, SP),
    ("spotify-intl-region", f"https://open.spotify.com/intl-pt-BR/album/{SP}?si=x", QueryKind.SPOTIFY_ALBUM, SP),
    ("spotify-intl-region-lower", f"https://open.spotify.com/intl-pt-br/playlist/{SP}", QueryKind.SPOTIFY_PLAYLIST, SP),
    ("spotify-link", "https://spotify.link/AbCdEf12345", QueryKind.SPOTIFY_LINK, "AbCdEf12345"),
    ("spotify-link-bare", "spotify.link/AbCdEf12345", QueryKind.SPOTIFY_LINK, "AbCdEf12345"),
    ("spotify-link-tracking", "https://spotify.link/AbCdEf12345?_p=abc", QueryKind.SPOTIFY_LINK, "AbCdEf12345"),
]


@pytest.mark.parametrize(
    ("text", "kind", "source_id"), [(t, k, i) for _, t, k, i in EDGE_LEGIT], ids=[c for c, *_ in EDGE_LEGIT]
)
def test_legit_forms_are_accepted_and_classified(text: str, kind: QueryKind, source_id: str | None) -> None:
    # WHEN a form people really paste is classified THEN it is accepted, with the id read offline
    query = classify_query(text, DEFAULT)
    assert query.kind is kind
    assert query.source_id == source_id


def test_a_spotify_uri_becomes_its_open_spotify_link() -> None:
    assert classify_query(f"spotify:track:{SP}", DEFAULT).text == f"https://open.spotify.com/track/{SP}"


@pytest.mark.parametrize(
    "url",
    ["https://spotify.link/", "https://spotify.link/abc/def", "https://spotify.link/ab", "https://spotify.link/a-b_c"],
)
def test_spotify_link_paths_that_are_not_a_share_code_are_refused(url: str) -> None:
    with pytest.raises(UnsupportedUrlError, match="share link"):
        classify_query(url, DEFAULT)


def test_spotify_link_is_an_allowed_host_only_for_share_links() -> None:
    assert "spotify.link" in ALLOWED_HOSTS
    assert classify_query("https://spotify.link/AbCdEf12345", DEFAULT).kind.is_spotify
