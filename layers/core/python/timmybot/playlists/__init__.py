"""Saved playlists (/playlist): personal ones a user owns in every allowed guild, server ones a
guild's DJs manage for everyone in it.

- ``names``: the rules for a playlist's name (1-50 characters, unique after NFKC + casefold).
- ``book``: the storage, over the Store's small records (``timmybot.store.keys``): one index item
  of headers per owner, the tracks in chunks of 50 under a revision, dead marks apart.
- ``transfer``: the export file's shape and the checks an imported file passes.
- ``jobs``: the worker's part (load, add by query, import, export).
- ``dead``: what the voice task does when a loaded track fails to play.

Nothing here imports yt-dlp, discord.py or spotipy at module level: the api's fast path uses
``names`` and ``book``.
"""
