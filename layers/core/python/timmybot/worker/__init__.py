"""The worker's jobs: their envelopes, and what /play, /search and the personal commands do."""
