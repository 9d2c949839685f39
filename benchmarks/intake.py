"""Bridge intake under load: submissions per second and p99 latency, 50 concurrent clients.

Baseline in the same run: the same clients calling `GET /health` on the same server, so the
ratio shows what storing a submission (intake + one transaction) costs over the bare HTTP path.
`GET /internal/v1/get_weights` is measured the same way after the submissions are stored.

    .venv/bin/python benchmarks/intake.py [--clients 50] [--total 500] [--database-url URL]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live_server import live_server

from prism.config import Settings

TOKEN = "benchmark-token"
HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
MODEL = Path(__file__).resolve().parents[1] / "examples" / "tiny_transformer" / "model.py"


def _archive(index: int) -> bytes:
    source = MODEL.read_text() if MODEL.exists() else "def build_model(ctx):\n    return None\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.py", source + f"\nVARIANT = {index}\n")
    return buffer.getvalue()


def _load(url: str, clients: int, total: int, call: Callable[[httpx.Client, int], None]) -> tuple[float, list[float]]:
    latencies: list[float] = []

    def run(client_index: int) -> list[float]:
        own = []
        with httpx.Client(base_url=url, timeout=120) as http:
            for i in range(client_index, total, clients):
                started = time.perf_counter()
                call(http, i)
                own.append(time.perf_counter() - started)
        return own

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for batch in pool.map(run, range(clients)):
            latencies.extend(batch)
    return time.perf_counter() - started, latencies


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--total", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    archives = [_archive(i) for i in range(args.total)]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PRISM_SHARED_TOKEN"] = TOKEN
        settings = Settings(data_dir=Path(tmp), database_url=args.database_url or f"sqlite:///{tmp}/bench.db")
        headers = {
            "Authorization": f"Bearer {TOKEN}",
            "X-Base-Verified-Hotkey": HOTKEY,
            "X-Submission-Filename": "project.zip",
        }

        def submit(http: httpx.Client, i: int) -> None:
            response = http.post("/internal/v1/bridge/submissions", headers=headers, content=archives[i])
            assert response.status_code == 201, response.text

        def health(http: httpx.Client, _i: int) -> None:
            assert http.get("/health").status_code == 200

        def weights(http: httpx.Client, _i: int) -> None:
            assert http.get("/internal/v1/get_weights", headers=headers).status_code == 200

        with live_server(settings) as url:
            base_s, base_lat = _load(url, args.clients, args.total, health)
            sub_s, sub_lat = _load(url, args.clients, args.total, submit)
            w_s, w_lat = _load(url, args.clients, args.total, weights)
    print(f"clients={args.clients} requests={args.total} database={'sqlite' if not args.database_url else 'url'}")
    print(f"baseline GET /health : {args.total / base_s:8.1f} req/s   p99 {_p99(base_lat) * 1000:7.1f} ms")
    print(f"bridge submissions   : {args.total / sub_s:8.1f} sub/s   p99 {_p99(sub_lat) * 1000:7.1f} ms")
    print(
        f"get_weights          : {args.total / w_s:8.1f} req/s   p99 {_p99(w_lat) * 1000:7.1f} ms"
        f"   median {statistics.median(w_lat) * 1000:6.1f} ms"
    )
    print(f"ratio throughput submissions/health = {(args.total / sub_s) / (args.total / base_s):.2f}")
    print(f"ratio p99 get_weights/health        = {_p99(w_lat) / _p99(base_lat):.2f}")
    print(f"ratio p99 submissions/health        = {_p99(sub_lat) / _p99(base_lat):.2f}")


if __name__ == "__main__":
    main()
