"""`prism serve` in its own process, for benchmarks whose clients must not share its CPU or GIL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(env: Mapping[str, str], *, timeout: float = 120.0) -> Iterator[tuple[str, int]]:
    """(base URL, server pid) of a `prism serve` started with `env` added to this environment."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "prism", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "PRISM_LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prism serve did not start")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
