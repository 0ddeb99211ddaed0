"""The yt-dlp adapter without network: its options, its error table, and how it reads info dicts.

yt-dlp itself is real here (its option parsing, its exception classes). Where an info dict is
needed, ``RecordedYoutubeDL`` replays one shaped like yt-dlp's own output; it stands in for the
network, not for our code.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yt_dlp
from yt_dlp.utils import DownloadError, ExtractorError, UnsupportedError

from timmybot import netguard
from timmybot.errors import (
    AgeRestrictedError,
    BlockedSourceError,
    SourceError,
    SourceTimeoutError,
    TrackNotFoundError,
    TrackTooLongError,
    TrackUnavailableError,
    UnsupportedUrlError,
)
from timmybot.models import Track
from timmybot.sources import (
    SITE_EXTRACTORS,
    Query,
    QueryKind,
    SourceSettings,
    YtDlpSource,
    build_ytdl_options,
    map_ytdlp_error,
)

SETTINGS = SourceSettings()


class RecordedYoutubeDL:
    """Replays one recorded ``extract_info`` answer (or raises a real yt-dlp exception)."""

    def __init__(self, answer: dict[str, Any] | BaseException) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def factory(self, options: dict[str, Any]) -> RecordedYoutubeDL:
        self._options = options
        return self

    def __enter__(self) -> RecordedYoutubeDL:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def extract_info(self, url: str, download: bool = True) -> dict[str, Any]:
        assert download is False
        self.calls.append((url, self._options))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def flat_entry(video_id: str, title: str, duration: float | None = 212.0) -> dict[str, Any]:
    """A flat playlist/search entry as yt-dlp's YouTube extractors emit it."""
    return {
        "_type": "url",
        "ie_key": "Youtube",
        "id": video_id,
        "url": f"https://www.youtube.com/watch?v={video_id}",
        "title": title,
        "duration": duration,
        "channel": "Some Channel",
        "thumbnails": [{"url": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg", "height": 360}],
    }


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["metadata", "stream"])
def test_generic_extractor_is_never_loaded(purpose: str) -> None:
    # GIVEN our options WHEN real yt-dlp loads its extractors from them
    options = build_ytdl_options(SETTINGS, purpose=purpose)  # type: ignore[arg-type]
    with yt_dlp.YoutubeDL(options) as ydl:
        loaded = {ie.IE_NAME.lower() for ie in ydl._ies.values()}
    # THEN exactly the site extractors are loaded, and never the generic one
    assert "generic" not in loaded
    assert loaded == set(SITE_EXTRACTORS)


def test_allowed_extractor_patterns_match_only_their_own_name() -> None:
    # yt-dlp fullmatches each entry as a case-insensitive regex: escaping keeps ':' and '.' literal
    patterns = build_ytdl_options(SETTINGS, purpose="metadata")["allowed_extractors"]
    assert not any(re.fullmatch(p, "generic", re.I) for p in patterns)
    assert not any(re.fullmatch(p, "youtube:history", re.I) for p in patterns)


def test_stream_options_pick_one_audio_format_opus_first() -> None:
    options = build_ytdl_options(SETTINGS, purpose="stream")
    assert options["format"] == "bestaudio[acodec=opus]/bestaudio/best"
    assert options["noplaylist"] is True
    assert options.get("ignore_no_formats_error") is not True


def test_metadata_options_list_playlists_flat_up_to_the_cap() -> None:
    options = build_ytdl_options(SourceSettings(playlist_cap=25), purpose="metadata")
    assert options["extract_flat"] == "in_playlist"
    assert options["playlistend"] == 25
    assert "format" not in options


def test_soundcloud_metadata_can_resolve_entries_instead_of_listing_them_flat() -> None:
    options = build_ytdl_options(SETTINGS, purpose="metadata", flat_playlists=False)
    assert options["extract_flat"] is False


@pytest.mark.parametrize("purpose", ["metadata", "stream"])
def test_options_never_download_cache_guess_urls_or_carry_credentials_by_default(purpose: str) -> None:
    options = build_ytdl_options(SETTINGS, purpose=purpose)  # type: ignore[arg-type]
    assert options["skip_download"] is True
    assert options["cachedir"] is False
    assert options["default_search"] == "error"
    assert options["socket_timeout"] == 15.0
    assert options["quiet"] is True and options["no_warnings"] is True
    for credential in ("cookiefile", "cookiesfrombrowser", "username", "password", "usenetrc"):
        assert credential not in options
    assert "remote_components" not in options
    # No upstream proxy: yt-dlp's only proxy is this process's network guard on loopback.
    assert options["proxy"] == netguard.guard_proxy_url()
    assert options["proxy"].startswith("http://127.0.0.1:")


def test_operator_credentials_are_passed_only_when_configured() -> None:
    settings = SourceSettings(cookies_path="/run/secrets/yt-cookies.txt", js_runtimes=("node",))
    options = build_ytdl_options(settings, purpose="stream")
    assert options["cookiefile"] == "/run/secrets/yt-cookies.txt"
    assert options["js_runtimes"] == {"node": {}}
    assert "yt-cookies" not in repr(settings)


# -- error table ---------------------------------------------------------------------------------

BOT_CHECK = (
    "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. Use --cookies-from-browser or "
    "--cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-"
    "to-yt-dlp  for how to manually pass cookies. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors"
    "#exporting-youtube-cookies  for tips on effectively exporting YouTube cookies"
)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (DownloadError(BOT_CHECK), BlockedSourceError),
        (DownloadError(BOT_CHECK.replace("’", "'")), BlockedSourceError),
        (ExtractorError("Sign in to confirm you’re not a bot", expected=True), BlockedSourceError),
        (DownloadError("ERROR: [youtube] xxxxxxxxxxx: Video unavailable"), TrackUnavailableError),
        (
            DownloadError("ERROR: [youtube] xxxxxxxxxxx: Video unavailable. This video is private"),
            TrackUnavailableError,
        ),
        (
            DownloadError(
                "ERROR: [youtube] xxxxxxxxxxx: Video unavailable. This video has been removed by the uploader"
            ),
            TrackUnavailableError,
        ),
        (
            DownloadError(
                "ERROR: [youtube] xxxxxxxxxxx: Sign in to confirm your age. This video may be "
                "inappropriate for some users."
            ),
            AgeRestrictedError,
        ),
        (DownloadError("ERROR: Unsupported URL: https://example.com/"), UnsupportedUrlError),
        (UnsupportedError("https://example.com/"), UnsupportedUrlError),
        (DownloadError("ERROR: No suitable extractor found for URL hello"), UnsupportedUrlError),
        (DownloadError("ERROR: [soundcloud] 123: HTTP Error 404: Not Found"), TrackUnavailableError),
        (DownloadError("ERROR: Unable to download webpage: <urlopen error timed out>"), SourceTimeoutError),
    ],
    ids=[
        "bot-check-curly",
        "bot-check-straight",
        "bot-check-extractor",
        "unavailable",
        "private",
        "removed",
        "age",
        "unsupported-download",
        "unsupported-extractor",
        "no-extractor",
        "soundcloud-404",
        "timeout",
    ],
)
def test_ytdlp_errors_map_to_the_sentence_the_user_reads(exc: BaseException, expected: type[SourceError]) -> None:
    error = map_ytdlp_error(exc, target="https://www.youtube.com/watch?v=xxxxxxxxxxx")
    assert type(error) is expected
    assert error.user_message


def test_unknown_ytdlp_error_is_logged_at_warning_and_not_shown_raw(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN an error nobody foresaw
    exc = DownloadError("ERROR: something odd happened with token=abc")
    # WHEN mapped THEN the user reads a generic sentence, the log keeps the original
    with caplog.at_level("WARNING", logger="timmybot.sources.ytdlp"):
        error = map_ytdlp_error(exc, target="https://soundcloud.com/a/b")
    assert type(error) is SourceError
    assert "odd" not in error.user_message
    assert any("something odd happened" in r.getMessage() for r in caplog.records)


def test_resolve_turns_a_bot_check_into_blocked_source_error() -> None:
    recorded = RecordedYoutubeDL(DownloadError(BOT_CHECK))
    source = YtDlpSource(SETTINGS, ydl_factory=recorded.factory)
    with pytest.raises(BlockedSourceError):
        source.resolve(Query(QueryKind.YOUTUBE, "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"))


# -- reading info dicts --------------------------------------------------------------------------


def test_search_returns_the_first_result_as_a_track() -> None:
    # GIVEN a search answer with one flat entry
    recorded = RecordedYoutubeDL(
        {
            "_type": "playlist",
            "id": "never gonna",
            "extractor_key": "YoutubeSearch",
            "entries": [flat_entry("dQw4w9WgXcQ", "Never Gonna Give You Up")],
        }
    )
    # WHEN searching
    tracks = YtDlpSource(SETTINGS, ydl_factory=recorded.factory).resolve(Query(QueryKind.SEARCH, "never gonna"))
    # THEN one track with the canonical watch URL; the search went out with the configured prefix
    assert tracks == [
        Track(
            source="youtube",
            source_id="dQw4w9WgXcQ",
            title="Never Gonna Give You Up",
            url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            duration_s=212,
            thumbnail="https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg",
            artist="Some Channel",
        )
    ]
    assert recorded.calls[0][0] == "ytsearch1:never gonna"


def test_search_without_results_is_track_not_found() -> None:
    recorded = RecordedYoutubeDL({"_type": "playlist", "id": "zzz", "entries": []})
    with pytest.raises(TrackNotFoundError):
        YtDlpSource(SETTINGS, ydl_factory=recorded.factory).resolve(Query(QueryKind.SEARCH, "zzz"))


def test_playlist_is_capped_and_skips_private_deleted_and_too_long_entries() -> None:
    # GIVEN a playlist of 10 good entries around a private, a deleted and a 4-hour one
    entries = [flat_entry(f"vid{i:08d}", f"Song {i}") for i in range(10)]
    entries.insert(2, flat_entry("private0000", "[Private video]", None))
    entries.insert(4, flat_entry("deleted0000", "[Deleted video]", None))
    entries.insert(6, flat_entry("longlong000", "Four hour mix", 4 * 3600))
    recorded = RecordedYoutubeDL({"_type": "playlist", "id": "PLx", "extractor_key": "YoutubeTab", "entries": entries})
    source = YtDlpSource(SourceSettings(playlist_cap=5), ydl_factory=recorded.factory)
    # WHEN resolved
    tracks = source.resolve(Query(QueryKind.YOUTUBE, "https://www.youtube.com/playlist?list=PLx"))
    # THEN the first five playable entries come back, in order
    assert [t.source_id for t in tracks] == [f"vid{i:08d}" for i in range(5)]


def test_single_track_over_the_limit_is_refused_with_the_limit() -> None:
    recorded = RecordedYoutubeDL(
        {
            "id": "longlong000",
            "title": "Ten hours",
            "duration": 36000,
            "extractor_key": "Youtube",
            "webpage_url": "https://www.youtube.com/watch?v=longlong000",
        }
    )
    with pytest.raises(TrackTooLongError, match="3 h"):
        YtDlpSource(SETTINGS, ydl_factory=recorded.factory).resolve(
            Query(QueryKind.YOUTUBE, "https://www.youtube.com/watch?v=longlong000", "longlong000")
        )


def test_soundcloud_track_keeps_its_permalink_and_artist() -> None:
    recorded = RecordedYoutubeDL(
        {
            "id": "123456",
            "title": "Song",
            "duration": 180.4,
            "extractor_key": "Soundcloud",
            "webpage_url": "https://soundcloud.com/artist/song",
            "uploader": "Artist",
            "thumbnail": "https://i1.sndcdn.com/artworks-x-t500x500.jpg",
        }
    )
    tracks = YtDlpSource(SETTINGS, ydl_factory=recorded.factory).resolve(
        Query(QueryKind.SOUNDCLOUD, "https://soundcloud.com/artist/song")
    )
    assert tracks[0].url == "https://soundcloud.com/artist/song"
    assert (tracks[0].source, tracks[0].artist, tracks[0].duration_s) == ("soundcloud", "Artist", 180)
    assert recorded.calls[0][1]["extract_flat"] is False


def test_a_spotify_query_is_not_yt_dlps_to_resolve() -> None:
    # Spotify links are resolved by the chain's Spotify metadata client, never by yt-dlp.
    source = YtDlpSource(SETTINGS, ydl_factory=RecordedYoutubeDL({}).factory)
    with pytest.raises(UnsupportedUrlError):
        source.resolve(Query(QueryKind.SPOTIFY_TRACK, "https://open.spotify.com/track/x", "x"))


def test_stream_reads_url_headers_codec_and_expiry() -> None:
    # GIVEN yt-dlp's answer after selecting itag 251 (opus in webm)
    stream_url = "https://rr1---sn-abc.googlevideo.com/videoplayback?expire=1800000000&itag=251&ip=1.2.3.4"
    recorded = RecordedYoutubeDL(
        {
            "id": "dQw4w9WgXcQ",
            "extractor_key": "Youtube",
            "duration": 212,
            "url": stream_url,
            "acodec": "opus",
            "vcodec": "none",
            "ext": "webm",
            "audio_ext": "webm",
            "http_headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "en-us,en;q=0.5"},
        }
    )
    track = Track("youtube", "dQw4w9WgXcQ", "Never", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", 212, None, None)
    # WHEN the voice task asks for a stream
    info = YtDlpSource(SETTINGS, ydl_factory=recorded.factory).stream(track)
    # THEN everything ffmpeg needs is there
    assert info.stream_url == stream_url
    assert info.is_opus and info.container == "webm"
    assert info.expires_at == 1_800_000_000.0
    assert info.http_headers["User-Agent"] == "Mozilla/5.0"
    assert recorded.calls[0][1]["format"] == "bestaudio[acodec=opus]/bestaudio/best"


def test_stream_refuses_a_stored_url_outside_the_policy() -> None:
    # GIVEN a tampered queue entry naming the metadata service
    track = Track("youtube", "x", "x", "https://169.254.169.254/latest/meta-data/", None, None, None)
    recorded = RecordedYoutubeDL({})
    # WHEN streamed THEN it is refused before yt-dlp is asked anything
    with pytest.raises(UnsupportedUrlError):
        YtDlpSource(SETTINGS, ydl_factory=recorded.factory).stream(track)
    assert recorded.calls == []


# -- SoundCloud short links ----------------------------------------------------------------------


def test_short_link_is_expanded_to_its_soundcloud_target() -> None:
    source = YtDlpSource(SETTINGS, location_fetcher=lambda url, timeout: "https://soundcloud.com/artist/song?si=1")
    assert source.expand_short_link("https://on.soundcloud.com/AbCd") == "https://soundcloud.com/artist/song?si=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.com/x",
        "http://169.254.169.254/",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://on.soundcloud.com/loop",
    ],
    ids=["evil", "imds", "other-allowed-site", "short-link-loop"],
)
def test_short_link_pointing_elsewhere_is_refused(target: str) -> None:
    source = YtDlpSource(SETTINGS, location_fetcher=lambda url, timeout: target)
    with pytest.raises(UnsupportedUrlError):
        source.expand_short_link("https://on.soundcloud.com/AbCd")


def test_short_link_without_redirect_is_not_found() -> None:
    source = YtDlpSource(SETTINGS, location_fetcher=lambda url, timeout: None)
    with pytest.raises(TrackNotFoundError):
        source.expand_short_link("https://on.soundcloud.com/AbCd")
