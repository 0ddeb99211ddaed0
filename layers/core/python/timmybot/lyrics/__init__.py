"""Lyrics: a port (``base.LyricsSource``), its LRCLIB adapter (``lrclib``), the LRC parser
(``lrc``), title normalisation (``names``), the store cache and the look-up rules (``service``),
and the paged embeds /lyrics shows (``pages``).

LRCLIB (a free lyrics database with synced lyrics and no key) matches a signature (track, artist,
album, duration within about 2 s) and needs clean names, while YouTube gives titles such as
"Artist - Song (Official Video)" from channels such as "ArtistVEVO" or "Artist - Topic", with
intros that change the duration. ``names.lyrics_query`` turns a track into clean names;
``service.find_lyrics`` asks by signature first, then searches and picks by duration within a
wider tolerance. Hits and misses are cached in the store (``keys.lyrics_pk``).

Plain data and pure functions apart from ``lrclib``, which imports urllib when it calls out.
"""
