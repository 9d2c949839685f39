"""A stand-in Platform broker: the real protocol over a real socket, jobs really run in bubblewrap.

Only the broker service is replaced (it is unreachable from here). It checks the bearer token and
the challenge slug, validates every limit as strictly as the contract says, unpacks the mounts,
runs the job with PRISM's bubblewrap backend and drains the writable mounts into stdout.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prism.config import Settings
from prism.sandbox.bubblewrap import BubblewrapSandbox
from prism.sandbox.sizes import parse_size
from prism.sandbox.spec import Limits, Mount, RunSpec

TOKEN = "broker-token-for-tests"
SLUG = "prism"


def _problems(payload: dict[str, Any]) -> list[str]:
    limits = payload.get("limits", {})
    problems = [key for key in ("job_id", "task_id", "image", "command", "limits", "mounts") if key not in payload]
    gpu = limits.get("gpu_count")
    if gpu is not None and (type(gpu) is not int or gpu < 1):
        problems.append("gpu_count must be a strict int >= 1 or null")
    if limits.get("cap_drop") != ["ALL"]:
        problems.append("cap_drop must be ALL")
    if limits.get("privileged") is not False or limits.get("init") is not True:
        problems.append("privileged false and init true are required")
    if "no-new-privileges" not in limits.get("security_opt", []):
        problems.append("no-new-privileges is required")
    if str(limits.get("user", "0")).split(":")[0] in ("0", "root"):
        problems.append("root user refused")
    return problems


class _Handler(BaseHTTPRequestHandler):
    server: StandInBroker

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), payload))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}" or self.headers.get("X-Base-Challenge-Slug") != SLUG:
            return self._reply(401, {"detail": "unauthorized"})
        if self.path == "/v1/docker/cleanup":
            removed = self.server.jobs.pop(payload["job_id"], None)
            return self._reply(200, {"removed": [removed] if removed else []})
        if self.path == "/v1/docker/list":
            return self._reply(200, {"containers": sorted(self.server.jobs.values())})
        if self.path != "/v1/docker/run":
            return self._reply(404, {"detail": "no such route"})
        if self.server.busy:
            return self._reply(429, {"detail": "no capacity"})
        if problems := _problems(payload):
            return self._reply(422, {"detail": problems})
        return self._reply(200, self.server.run_job(payload))


class StandInBroker(ThreadingHTTPServer):
    def __init__(self, settings: Settings) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sandbox = BubblewrapSandbox(settings)
        self.busy = False
        self.jobs: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> StandInBroker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def run_job(self, payload: dict[str, Any]) -> dict[str, Any]:
        limits = payload["limits"]
        with tempfile.TemporaryDirectory() as work:
            root = Path(work)
            root.chmod(0o755)
            mounts, writable = [], []
            for index, mount in enumerate(payload["mounts"]):
                target = root / f"m{index}"
                target.mkdir(mode=0o755)
                with tarfile.open(fileobj=io.BytesIO(base64.b64decode(mount["archive"])), mode="r:gz") as tar:
                    tar.extractall(target, filter="data")
                if mount["read_only"]:
                    mounts.append(Mount(target, mount["target"]))
                else:
                    writable.append((index, target))
            self.jobs[payload["job_id"]] = payload["job_id"]
            spec = RunSpec(
                command=tuple(payload["command"]),
                mounts=tuple(mounts),
                artifacts_dir=writable[0][1] if writable else None,
                env=payload["env"],
                workdir=payload["workdir"],
                limits=Limits(
                    cpus=limits["cpus"],
                    memory_bytes=parse_size(limits["memory"]),
                    memory_swap_bytes=parse_size(limits["memory_swap"]),
                    pids=limits["pids_limit"],
                    timeout_seconds=payload["timeout_seconds"],
                ),
            )
            result = self.sandbox.run(spec)
            stdout = result.stdout
            for index, path in writable:
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                    for name, data in result.artifacts.items():
                        info = tarfile.TarInfo(name)
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
                encoded = base64.b64encode(buffer.getvalue()).decode()
                stdout += (
                    f"@@BASE_BROKER_MOUNT_OUT[{index}]:BEGIN@@\n{encoded}\n@@BASE_BROKER_MOUNT_OUT[{index}]:END@@\n"
                )
                del path
        return {
            "container_name": payload["job_id"],
            "stdout": stdout,
            "stderr": result.stderr,
            "returncode": result.exit_code,
            "timed_out": result.timed_out,
        }
