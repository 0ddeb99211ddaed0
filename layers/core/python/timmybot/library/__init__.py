"""A linked user's own music: personal playlists and likes, and the Spotify and YouTube Data clients."""
