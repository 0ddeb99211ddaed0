"""The search ranking (timmybot.sources.ranking) on result sets in yt-dlp's flat-entry shape: what
``ytsearch10:<query>`` with ``extract_flat`` lists, each set with the pick a person would make."""

from __future__ import annotations

from typing import Any

import pytest

from timmybot.models import Track
from timmybot.sources.ranking import asked_variants, normalise, rank, rank_tracks, score


def flat(
    video_id: str,
    title: str,
    channel: str,
    duration: float | None,
    *,
    verified: bool | None = None,
    views: int = 1_000_000,
) -> dict[str, Any]:
    """One entry as yt-dlp's YouTube search lists it flat (``_type: url``, no formats)."""
    handle = "@" + "".join(c for c in channel if c.isalnum())
    return {
        "_type": "url",
        "ie_key": "Youtube",
        "id": video_id,
        "url": f"https://www.youtube.com/watch?v={video_id}",
        "title": title,
        "description": None,
        "duration": duration,
        "channel_id": "UC" + video_id.ljust(22, "x"),
        "channel": channel,
        "channel_url": f"https://www.youtube.com/channel/UC{video_id}",
        "uploader": channel,
        "uploader_id": handle,
        "uploader_url": f"https://www.youtube.com/{handle}",
        "thumbnails": [{"url": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg", "height": 360, "width": 480}],
        "timestamp": None,
        "release_timestamp": None,
        "availability": None,
        "view_count": views,
        "live_status": None,
        "channel_is_verified": verified,
    }


# (query, entries in the source's order, the id of the expected top pick)
CASES: list[tuple[str, list[dict[str, Any]], str]] = [
    (  # 1. "- Topic" (the auto-generated art track) over a fan upload listed first
        "daft punk harder better faster stronger",
        [
            flat("fan00000001", "Daft Punk - Harder Better Faster Stronger (HQ)", "MusicFan1987", 224),
            flat("topic000001", "Harder, Better, Faster, Stronger", "Daft Punk - Topic", 224),
            flat("nightcore01", "Nightcore - Harder Better Faster Stronger", "NightcoreWorld", 180),
        ],
        "topic000001",
    ),
    (  # 2. the official video over a lyric video listed first
        "rick astley never gonna give you up",
        [
            flat("lyrics00001", "Rick Astley - Never Gonna Give You Up (Lyrics)", "7clouds", 213),
            flat(
                "dQw4w9WgXcQ",
                "Rick Astley - Never Gonna Give You Up (Official Music Video)",
                "Rick Astley",
                213,
                verified=True,
            ),
            flat("live0000001", "Rick Astley - Never Gonna Give You Up (Live at Glastonbury 2023)", "BBC Music", 260),
        ],
        "dQw4w9WgXcQ",
    ),
    (  # 3. a query for the lyrics gets the lyric video
        "never gonna give you up lyrics",
        [
            flat("dQw4w9WgXcQ", "Rick Astley - Never Gonna Give You Up (Official Music Video)", "Rick Astley", 213),
            flat("lyrics00001", "Rick Astley - Never Gonna Give You Up (Lyrics)", "7clouds", 213),
        ],
        "lyrics00001",
    ),
    (  # 4. a cover listed first (more views) loses to the original
        "hallelujah leonard cohen",
        [
            flat(
                "cover000001", "Hallelujah - Leonard Cohen (Cover by Pentatonix)", "PTXofficial", 277, views=9_000_000
            ),
            flat("original001", "Leonard Cohen - Hallelujah (Official Audio)", "Leonard Cohen", 279),
        ],
        "original001",
    ),
    (  # 5. asking for a cover gets the cover
        "hallelujah cover pentatonix",
        [
            flat("original001", "Leonard Cohen - Hallelujah (Official Audio)", "Leonard Cohen", 279),
            flat("cover000001", "Hallelujah - Pentatonix (Cover)", "PTXofficial", 277),
        ],
        "cover000001",
    ),
    (  # 6. a live version listed first loses when the query does not say "live"
        "queen bohemian rhapsody",
        [
            flat("liveaid0001", "Queen - Bohemian Rhapsody (Live Aid 1985)", "Queen Official", 360),
            flat(
                "fJ9rUzIMcZQ",
                "Queen – Bohemian Rhapsody (Official Video Remastered)",
                "Queen Official",
                359,
                verified=True,
            ),
        ],
        "fJ9rUzIMcZQ",
    ),
    (  # 7. the query asks for the live version
        "queen bohemian rhapsody live aid",
        [
            flat(
                "fJ9rUzIMcZQ",
                "Queen – Bohemian Rhapsody (Official Video Remastered)",
                "Queen Official",
                359,
                verified=True,
            ),
            flat("liveaid0001", "Queen - Bohemian Rhapsody (Live Aid 1985)", "Queen Official", 360),
        ],
        "liveaid0001",
    ),
    (  # 8. a 10-hour loop listed first loses
        "nyan cat",
        [
            flat("10hours0001", "Nyan Cat 10 Hours", "LoopMaster", 36000),
            flat("QH2-TGUlwu4", "Nyan Cat [original]", "saraj00n", 217),
        ],
        "QH2-TGUlwu4",
    ),
    (  # 9. the query asks for the 10-hour version
        "nyan cat 10 hours",
        [
            flat("QH2-TGUlwu4", "Nyan Cat [original]", "saraj00n", 217),
            flat("10hours0001", "Nyan Cat 10 Hours", "LoopMaster", 36000),
        ],
        "10hours0001",
    ),
    (  # 10. sped up and slowed + reverb edits lose to the track
        "sza kill bill",
        [
            flat("spedup00001", "SZA - Kill Bill (sped up)", "sped up songs", 120),
            flat("slowed00001", "SZA - Kill Bill (slowed + reverb)", "slowed vibes", 210),
            flat("topic000002", "Kill Bill", "SZA - Topic", 153),
        ],
        "topic000002",
    ),
    (  # 11. the query asks for the sped up edit
        "kill bill sped up",
        [
            flat("topic000002", "Kill Bill", "SZA - Topic", 153),
            flat("spedup00001", "SZA - Kill Bill (sped up)", "sped up songs", 120),
        ],
        "spedup00001",
    ),
    (  # 12. nightcore loses
        "alan walker faded",
        [
            flat("nightcore02", "Nightcore - Faded", "Nightcore Reality", 190),
            flat("60ItHLz5WEA", "Alan Walker - Faded", "Alan Walker", 212, verified=True),
        ],
        "60ItHLz5WEA",
    ),
    (  # 13. VEVO official video over a karaoke track
        "adele hello",
        [
            flat("karaoke0001", "Adele - Hello (Karaoke Version)", "Sing King", 295),
            flat("YQHsXMglC9A", "Adele - Hello (Official Music Video)", "AdeleVEVO", 367, verified=True),
        ],
        "YQHsXMglC9A",
    ),
    (  # 14. official audio over a reaction video
        "billie eilish bad guy",
        [
            flat("reaction001", "FIRST TIME HEARING Billie Eilish - bad guy (REACTION)", "ReactsDaily", 640),
            flat("audio000001", "Billie Eilish - bad guy (Official Audio)", "Billie Eilish", 194),
        ],
        "audio000001",
    ),
    (  # 15. the artist's own channel over an unrelated upload of a different song
        "dua lipa levitating",
        [
            flat("other000001", "Levitating Cat Compilation", "Funny Pets", 600),
            flat("TUVcZfQe-Kw", "Dua Lipa - Levitating (Official Music Video)", "Dua Lipa", 231, verified=True),
        ],
        "TUVcZfQe-Kw",
    ),
    (  # 16. a remix loses unless asked
        "the weeknd blinding lights",
        [
            flat("remix000001", "The Weeknd - Blinding Lights (Chromatics Remix)", "The Weeknd", 300),
            flat("4NRXx6U8ABQ", "The Weeknd - Blinding Lights (Official Video)", "The Weeknd", 262),
        ],
        "4NRXx6U8ABQ",
    ),
    (  # 17. a song whose title has "live" in it: no live penalty when the query says it too
        "oasis live forever",
        [
            flat("topic000003", "Live Forever (Remastered)", "Oasis - Topic", 277),
            flat("fan00000002", "oasis live forever guitar tutorial", "GuitarLessons", 610),
        ],
        "topic000003",
    ),
    (  # 18. a lyric video when it is all there is beats a 1-hour loop (sensible, not penalised away)
        "lewis capaldi someone you loved",
        [
            flat("1hour000001", "Lewis Capaldi - Someone You Loved (1 Hour Loop)", "HourLoops", 3600),
            flat("lyrics00002", "Lewis Capaldi - Someone You Loved (Lyrics)", "7clouds", 182),
        ],
        "lyrics00002",
    ),
]


@pytest.mark.parametrize(("query", "entries", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_expected_pick_ranks_first(query: str, entries: list[dict[str, Any]], expected: str) -> None:
    order = rank(query, entries)
    assert entries[order[0]]["id"] == expected, [(entries[i]["id"], round(score(query, entries[i]), 1)) for i in order]


def test_there_are_at_least_15_result_sets() -> None:
    assert len(CASES) >= 15


def test_an_isrc_match_wins_where_one_is_known() -> None:
    entries = [
        flat("aaaaaaaaaaa", "Song - Artist (Official Video)", "ArtistVEVO", 200),
        {**flat("bbbbbbbbbbb", "Song", "Artist - Topic", 200), "isrc": "USRC17607839"},
    ]
    entries[0]["isrc"] = None
    assert entries[rank("song artist", entries, isrc="USRC17607839")[0]]["id"] == "bbbbbbbbbbb"


def test_ties_keep_the_sources_order_and_odd_fields_do_not_break_it() -> None:
    same = [flat("first000001", "Song", "Someone", 200), flat("second00001", "Song", "Someone", 200)]
    assert rank("song", same) == [0, 1]
    odd: list[dict[str, Any]] = [{"title": None, "duration": "3:20"}, {"duration": True}, {}]
    assert sorted(rank("anything", odd)) == [0, 1, 2]
    assert rank("", [flat("x0000000001", "X", "Y", None)]) == [0]


def test_tracks_rank_through_their_flat_view() -> None:
    def track(source_id: str, title: str, artist: str, duration: int) -> Track:
        return Track(
            "youtube", source_id, title, f"https://www.youtube.com/watch?v={source_id}", duration, None, artist
        )

    tracks = [
        track("spedup00001", "Kill Bill (sped up)", "sped up songs", 120),
        track("topic000002", "Kill Bill", "SZA - Topic", 153),
    ]
    assert [t.source_id for t in rank_tracks("sza kill bill", tracks)] == ["topic000002", "spedup00001"]


def test_normalising_and_asked_variants() -> None:
    assert normalise("Beyoncé – Halo (Live!)") == "beyonce halo live"
    assert asked_variants("Kill Bill sped up") == frozenset({"sped up", "speed up"})
    assert asked_variants("hello") == frozenset()
