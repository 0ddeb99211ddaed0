"""Test wiring only: a Python started with this folder on PYTHONPATH runs yt-dlp as if the video
site never answered: every extraction blocks for ``HUNG_YTDLP_S`` seconds (default 90), then fails.
No connection is ever opened. Nothing in the product imports this."""

import os
import time

import yt_dlp
from yt_dlp.utils import DownloadError

_HANG_S = float(os.environ.get("HUNG_YTDLP_S", "90"))


def _hang(self: object, url: str, *args: object, **kwargs: object) -> object:
    time.sleep(_HANG_S)
    raise DownloadError(f"no answer from {url} (the test's hang)")


yt_dlp.YoutubeDL.extract_info = _hang  # type: ignore[method-assign,assignment]
