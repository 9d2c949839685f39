"""A real PRISM API on a free loopback port, in a thread, for tests that need real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from prism.api.app import create_app
from prism.config import Settings
from prism.store.db import make_engine
from prism.store.migrate import upgrade


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def live_server(
    settings: Settings, *, wrap: Callable[[Any], Any] | None = None, **uvicorn_options: Any
) -> Iterator[str]:
    """`wrap`, if given, wraps the ASGI app (e.g. to see which requests a client made)."""
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    port = free_port()
    app: Any = create_app(settings, engine=engine)
    server = uvicorn.Server(
        uvicorn.Config(
            app if wrap is None else wrap(app), host="127.0.0.1", port=port, log_level="warning", **uvicorn_options
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
