"""Building the chain's sources from their names: the built-ins and (tests/demo only) ``module:factory``.

Each built-in is imported when it is built, so naming a source costs no yt-dlp import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from timmybot.errors import UnsupportedUrlError

from .base import Source
from .models import SourceSettings, is_test_source_name

SourceFactory = Callable[[SourceSettings], Source]


def _youtube(settings: SourceSettings) -> Source:
    from .ytdlp import YouTubeSource  # noqa: PLC0415 - the module is light, but keep the chain tiny

    return YouTubeSource(settings)


def _ytmusic(settings: SourceSettings) -> Source:
    from .ytdlp import YouTubeMusicSource  # noqa: PLC0415

    return YouTubeMusicSource(settings)


def _soundcloud(settings: SourceSettings) -> Source:
    from .ytdlp import SoundCloudSource  # noqa: PLC0415

    return SoundCloudSource(settings)


def _local(settings: SourceSettings) -> Source:
    from .local import LocalMediaSource  # noqa: PLC0415

    return LocalMediaSource(settings)


BUILTIN_FACTORIES: dict[str, SourceFactory] = {
    "youtube": _youtube,
    "ytmusic": _ytmusic,
    "soundcloud": _soundcloud,
    "local": _local,
}


def build_source(name: str, settings: SourceSettings) -> Source:
    """The source ``name`` of ``source_chain``: a built-in, or (tests/demo only) ``module:factory``."""
    if is_test_source_name(name):
        if not settings.allow_local_media:
            raise UnsupportedUrlError(f"Source {name!r} is test-only.")
        module_name, _, attribute = name.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
        source = factory(settings)
        if not isinstance(source, Source):
            raise TypeError(f"{name} did not build a Source")
        return source
    if name == "local" and not settings.allow_local_media:
        raise UnsupportedUrlError()
    return BUILTIN_FACTORIES[name](settings)


def chain_names(settings: SourceSettings) -> tuple[str, ...]:
    """``source_chain``, plus "local" at the end when local media is allowed (loopback links)."""
    names = settings.source_chain
    if settings.allow_local_media and "local" not in names:
        names = (*names, "local")
    return names
