"""Title normalisation for lyrics look-ups: real title shapes from YouTube, YouTube Music, SoundCloud
and Spotify give the (artist, track) LRCLIB files the song under."""

from __future__ import annotations

import pytest

from timmybot.lyrics.models import LyricsQuery
from timmybot.lyrics.names import clean_channel, lyrics_query, names_match, query_from_text
from timmybot.models import Track


def video(title: str, channel: str | None, *, source: str = "youtube", song: str | None = None) -> Track:
    return Track(source, "dQw4w9WgXcQ", title, "https://www.youtube.com/watch?v=dQw4w9WgXcQ", 213, None, channel,
                 song=song)  # fmt: skip


# (title, channel, expected artist, expected track)
SHAPES = [
    ("Rick Astley - Never Gonna Give You Up (Official Music Video)", "Rick Astley", "Rick Astley",
     "Never Gonna Give You Up"),
    ("Never Gonna Give You Up", "Rick Astley - Topic", "Rick Astley", "Never Gonna Give You Up"),
    ("Adele - Hello", "AdeleVEVO", "Adele", "Hello"),
    ("Shake It Off", "TaylorSwiftVEVO", "Taylor Swift", "Shake It Off"),
    ("Coldplay - Yellow (Official Video)", "Coldplay", "Coldplay", "Yellow"),
    ("Daft Punk - Get Lucky (Official Audio) ft. Pharrell Williams, Nile Rodgers", "Daft Punk", "Daft Punk",
     "Get Lucky"),
    ("Lewis Capaldi - Someone You Loved (Lyrics)", "7clouds", "Lewis Capaldi", "Someone You Loved"),
    ("Billie Eilish - bad guy [Lyric Video]", "Billie Eilish", "Billie Eilish", "bad guy"),
    ("Mark Ronson - Uptown Funk (Official Video) ft. Bruno Mars", "Mark Ronson", "Mark Ronson", "Uptown Funk"),
    ("Calvin Harris feat. Rihanna - This Is What You Came For", "CalvinHarrisVEVO", "Calvin Harris",
     "This Is What You Came For"),
    ("Ed Sheeran - Perfect (feat. Beyoncé) [Official Audio]", "Ed Sheeran", "Ed Sheeran", "Perfect"),
    ("The Beatles - Here Comes The Sun (Remastered 2019)", "The Beatles", "The Beatles", "Here Comes The Sun"),
    ("Queen - Bohemian Rhapsody - Remastered 2011", "Queen Official", "Queen", "Bohemian Rhapsody"),
    ("Queen - Bohemian Rhapsody (Live Aid 1985)", "Queen Official", "Queen", "Bohemian Rhapsody"),
    ("Nirvana - Smells Like Teen Spirit (Live at Reading 1992)", "NirvanaVEVO", "Nirvana",
     "Smells Like Teen Spirit"),
    ("米津玄師 MV「Lemon」", "米津玄師", "米津玄師", "Lemon"),
    ("YOASOBI「夜に駆ける」Official Music Video", "Ayase / YOASOBI", "YOASOBI", "夜に駆ける"),
    ("BTS (방탄소년단) 'Dynamite' Official MV", "HYBE LABELS", "BTS", "Dynamite"),
    ("Кино - Группа крови", "Kino", "Кино", "Группа крови"),
    ("IU(아이유) - Blueming", "이지금 [IU Official]", "IU", "Blueming"),
    ("a-ha - Take On Me (Official Video) [4K]", "a-ha", "a-ha", "Take On Me"),
    ("Blinding Lights", "The Weeknd", "The Weeknd", "Blinding Lights"),
    ("Imagine Dragons - Believer (Visualizer)", "ImagineDragonsVEVO", "Imagine Dragons", "Believer"),
    ("Luis Fonsi - Despacito ft. Daddy Yankee", "LuisFonsiVEVO", "Luis Fonsi", "Despacito"),
    ('Gotye - "Somebody That I Used To Know" (feat. Kimbra) - official music video', "gotye", "Gotye",
     "Somebody That I Used To Know"),
    ("Toto - Africa (Official HD Video)", "TotoVEVO", "Toto", "Africa"),
    ("Blue Öyster Cult - (Don't Fear) The Reaper", "Blue Öyster Cult", "Blue Öyster Cult",
     "(Don't Fear) The Reaper"),
    ("Hozier - Take Me To Church | Official Video", "Hozier", "Hozier", "Take Me To Church"),
    ("Radiohead – Creep", "Radiohead", "Radiohead", "Creep"),
    ("Guns N' Roses - Sweet Child O' Mine (Official Music Video)", "GunsNRosesVEVO", "Guns N' Roses",
     "Sweet Child O' Mine"),
    ("Sweet Child O' Mine", "Guns N' Roses - Topic", "Guns N' Roses", "Sweet Child O' Mine"),
]  # fmt: skip


@pytest.mark.parametrize(("title", "channel", "artist", "track"), SHAPES, ids=[s[0][:40] for s in SHAPES])
def test_a_video_title_gives_the_artist_and_track_lrclib_files(title: str, channel: str, artist: str,
                                                                 track: str) -> None:  # fmt: skip
    query = lyrics_query(video(title, channel))
    assert (query.artist, query.track) == (artist, track)
    assert query.duration_s == 213


def test_there_are_at_least_twenty_shapes() -> None:
    assert len(SHAPES) >= 20


def test_music_metadata_wins_over_the_video_title() -> None:
    # GIVEN yt-dlp's track/artist fields (a YouTube Music upload) WHEN normalised THEN they are used
    query = lyrics_query(video("Some Upload Title [HD] (Fan Edit)", "Rick Astley", song="Never Gonna Give You Up"))
    assert (query.artist, query.track) == ("Rick Astley", "Never Gonna Give You Up")


def test_a_spotify_track_keeps_its_names_without_the_remaster_suffix() -> None:
    spotify = Track("spotify", "6rqhFgbbKwnb9MLmUQDhG6", "Here Comes The Sun - Remastered 2009",
                    "https://open.spotify.com/track/6rqhFgbbKwnb9MLmUQDhG6", 185, None, "The Beatles",
                    album="Abbey Road (Remastered)")  # fmt: skip
    query = lyrics_query(spotify)
    assert (query.artist, query.track, query.album) == ("The Beatles", "Here Comes The Sun", "Abbey Road (Remastered)")


def test_channel_tails_come_off() -> None:
    assert clean_channel("Rick Astley - Topic") == "Rick Astley"
    assert clean_channel("ACDCVEVO") == "ACDC"
    assert clean_channel("EdSheeranVevo") == "Ed Sheeran"


def test_typed_words_are_split_when_they_read_artist_dash_title() -> None:
    assert query_from_text("  Queen -  Bohemian Rhapsody ") == LyricsQuery(
        artist="Queen", track="Bohemian Rhapsody", text="Queen - Bohemian Rhapsody"
    )
    assert query_from_text("bohemian rhapsody").artist == ""


def test_names_match_folds_case_accents_and_extra_words() -> None:
    query = LyricsQuery(artist="Beyonce", track="Halo")
    assert names_match(query, "HALO", "Beyoncé")
    assert names_match(LyricsQuery(artist="Calvin Harris", track="Feels"), "Feels", "Calvin Harris, Pharrell")
    assert not names_match(query, "Halo Theme", "Someone Else")
    assert not names_match(query, "Hello", "Beyoncé")
