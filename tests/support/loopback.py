"""Running the loopback fakes' HTTP servers: one way, with a short shutdown poll.

``socketserver``'s ``serve_forever`` polls for shutdown every 0.5 s by default, so each fake's
``stop()`` used to cost up to half a second of teardown in every test that started one. The fakes
serve in a daemon thread through ``serve_in_thread``; their ``stop()`` then returns within one poll.
"""

from __future__ import annotations

import socketserver
import threading

POLL_INTERVAL_S = 0.02


def serve_in_thread(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Start ``server.serve_forever`` in a daemon thread named ``name``; returns the thread."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S}, name=name, daemon=True
    )
    thread.start()
    return thread
