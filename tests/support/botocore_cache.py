"""botocore's data files parsed once per test process, not once per session.

While moto's ``mock_aws`` is active it clears boto3's default session, so every ``boto3.client()``
made inside one builds a new botocore session: that reads and parses the service model, the
endpoint rules and the partitions again and inspects each of its ~140 built-in event handlers,
about 0.4 s of CPU per client here, and the suite makes hundreds. The files do not change during a
run, so every session of the process shares one loader (its caches live on the instance), and
whether a handler takes ``**kwargs`` is remembered per function. Nothing is faked: the sessions get
the same data and the same handlers, read once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import botocore.compat
import botocore.hooks
import botocore.loaders
import botocore.session


@functools.cache  # once per process
def install() -> None:
    """Share the loader and memoise the handler check, for every botocore session made from now on."""
    create_loader = functools.cache(botocore.loaders.create_loader)
    botocore.session.create_loader = create_loader
    accepts = functools.lru_cache(maxsize=4096)(botocore.compat.accepts_kwargs)

    def accepts_kwargs(func: Callable[..., Any]) -> bool:
        # Keyed by the plain function: a bound method's handler check is its function's, and the
        # cache then holds no client alive.
        return bool(accepts(getattr(func, "__func__", func)))

    botocore.hooks.accepts_kwargs = accepts_kwargs
