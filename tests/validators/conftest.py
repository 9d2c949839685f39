"""Validator keys, a runtime config that sends training to validators, and live servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from prism.validators.signing import ValidatorKey
from tests.live_server import free_port
from tests.pipeline.conftest import CPU_OFFICIAL

SEEDS = {
    name: bytes([index + 1]) * 32 for index, name in enumerate(("silent", "liar", "honest1", "honest2", "outsider"))
}


def key(name: str) -> ValidatorKey:
    return ValidatorKey.from_seed(SEEDS[name])


def key_file(directory: Path, name: str) -> Path:
    path = directory / f"{name}.hotkey"
    path.write_text(SEEDS[name].hex())
    return path


def validators_config(**policy: Any) -> dict[str, Any]:
    allowed = [key(n).hotkey for n in ("silent", "liar", "honest1", "honest2")]
    return {
        **CPU_OFFICIAL,
        "validators": {"mode": "validators", "allowed_hotkeys": allowed, "quorum": 2, **policy},
    }


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# The worker fixtures (fast budgets, a locked dataset, the database) shared with tests/pipeline.
from tests.pipeline.conftest import api, dataset_dir, worker_sessions, worker_settings  # noqa: E402

__all__ = ["api", "dataset_dir", "worker_sessions", "worker_settings"]
