"""`prism serve` in its own process(es), for benchmarks whose clients must not share its CPU or GIL.

It runs as deployed: the default log level (INFO: uvicorn's access line for every request, into
a file here), the default middleware, the limits `prism serve` sets. `cpu_seconds` adds up the
server's processes (with `--workers N`, the supervisor and its N children).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and every process below it, from /proc."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            stack.extend(_children(current))
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextmanager
def served(
    env: Mapping[str, str], *, timeout: float = 120.0, workers: int = 1, log: Path | None = None
) -> Iterator[tuple[str, int]]:
    """(base URL, server pid) of a `prism serve` started with `env` added to this environment."""
    port = _free_port()
    command = [sys.executable, "-m", "prism", "serve", "--host", "127.0.0.1", "--port", str(port)]
    output = log.open("w") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env={**os.environ, **env},
        stdout=output,
        stderr=output,
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
        if log is not None and not isinstance(output, int):
            output.close()
