"""`prism serve --workers 2`: two server processes on one port, on SQLite, each with its own
weights refresher; concurrent uploads all land once, and both processes answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.api.conftest import MODEL, make_zip
from tests.conftest import TOKEN
from tests.live_server import free_port

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
UPLOADS = 24


def _upload(url: str, archive: bytes) -> tuple[int, str]:
    response = httpx.post(
        f"{url}/internal/v1/bridge/submissions",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "X-Base-Verified-Hotkey": HOTKEY,
            "X-Submission-Filename": "project.zip",
        },
        content=archive,
        timeout=120,
    )
    return response.status_code, response.json().get("id", "")


def test_two_server_processes_share_the_port_and_the_database(tmp_path: Path) -> None:
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
    env.pop("PRISM_SHARED_TOKEN", None)
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "prism", "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "prism serve --workers 2 did not start"
            time.sleep(0.2)
        archives = [make_zip({"model.py": MODEL + f"\nVARIANT = {i}\n"}) for i in range(UPLOADS)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda archive: _upload(url, archive), archives))
        weights = httpx.get(f"{url}/internal/v1/get_weights", headers={"Authorization": f"Bearer {TOKEN}"})
        again = _upload(url, archives[0])  # the same bytes again: the first submission, whichever process answers
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert [status for status, _ in answers] == [201] * UPLOADS
    assert len({submission_id for _, submission_id in answers}) == UPLOADS
    assert again == (200, answers[0][1])
    assert weights.status_code == 200 and "weights" in weights.json()
    documents = [json.loads(line) for line in output.splitlines() if line.strip()]
    started = {doc["message"] for doc in documents if doc["message"].startswith("Started server process")}
    assert len(started) == 2, started  # two processes, each with its own pid
    assert not [doc for doc in documents if doc["level"] in ("ERROR", "CRITICAL")]
