"""With PRISM_LOG_FORMAT=json, every line `prism serve` prints is JSON, uvicorn's included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TOKEN
from tests.live_server import free_port


def test_uvicorn_lines_are_json(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    port = free_port()
    env = {
        **os.environ,
        "PRISM_DATA_DIR": str(tmp_path / "data"),
        "PRISM_SHARED_TOKEN_FILE": str(token),
        "PRISM_LOG_FORMAT": "json",
        "PRISM_LOG_LEVEL": "INFO",
    }
    env.pop("PRISM_DATABASE_URL", None)
    command = [sys.executable, "-m", "prism", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "prism serve did not start"
            time.sleep(0.2)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    lines = [line for line in output.splitlines() if line.strip()]
    documents = [json.loads(line) for line in lines]  # a plain-text line fails here
    loggers = {doc["logger"] for doc in documents}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, loggers
    assert any("GET /health" in doc["message"] for doc in documents if doc["logger"] == "uvicorn.access")
