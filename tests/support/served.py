"""An ASGI app under a real uvicorn server in a thread of this process, for SDK tests that
need the test's own objects (a simulated clock, the gateway's worker) on the server side;
and a pycronofy client pointed at it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pycronofy
import uvicorn

from tests.support.processes import free_port
from tests.support.waiting import eventually


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def sdk(base_url: str, client_id: str, secret: str | None, **auth: str) -> pycronofy.Client:
    """pycronofy 2.1.1, unmodified, re-pointed at ``base_url`` without touching its settings."""
    client = pycronofy.Client(client_id=client_id, client_secret=secret, **auth)
    client.request_handler.base_url = base_url
    client.app_base_url = base_url
    return client
