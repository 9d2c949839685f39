"""get_weights at 1k, 10k and 100k scored hotkeys: the read path against `GET /health`.

Each size gets a fresh database with that many completed, score-eligible results (one family
per four hotkeys, every family with a stored graph). Printed per size:

- the CPU of one background recompute (what the refresher does when results change) and its
  growth from the size before (n log n: about 10x per 10x, where the old path grew n^1.5);
- p50/p99 of `GET /internal/v1/get_weights` and of `GET /health` (the baseline: same server,
  same client, same run) over real HTTP, and their ratio;
- the server's CPU for the get_weights reads over its CPU for as many health checks.

The server is `prism serve` in its own process (the client does not share its CPU or GIL). The
route only returns bytes rendered once per snapshot; the recompute runs in the background
refresher when the results change, never in a read.

    .venv/bin/python benchmarks/weights.py [--sizes 1000,10000,100000] [--reads 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.served import served
from tests.scored import seed_scored

from prism.api.weights import WeightsCache
from prism.config import Settings
from prism.store.base import utcnow
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.submissions import epoch_at

TOKEN = "benchmark-token"


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def _reads(client: httpx.Client, path: str, count: int, headers: dict[str, str]) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200
    return latencies


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_size(size: int, reads: int, tmp: Path) -> dict[str, float]:
    url = f"sqlite:///{tmp}/weights-{size}.db"
    settings = Settings(data_dir=tmp, database_url=url)
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        seed_scored(session, hotkeys=size, families=max(1, size // 4), epoch=epoch_at(utcnow(), settings.epoch_seconds))
    # The recompute the background refresher runs when results change (timed here on its own).
    cache = WeightsCache(settings, sessions)
    started = time.process_time()
    cache.refresh()
    recompute_cpu = time.process_time() - started
    weights = cache.get().weights
    engine.dispose()
    env = {
        "PRISM_DATABASE_URL": url,
        "PRISM_DATA_DIR": str(tmp),
        "PRISM_SHARED_TOKEN": TOKEN,
        "PRISM_WEIGHTS_REFRESH_SECONDS": "0.5",
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with served(env) as (base, pid), httpx.Client(base_url=base, timeout=60) as client:
        deadline = time.monotonic() + 600
        while not client.get("/internal/v1/get_weights", headers=headers).json()["weights"]:
            assert time.monotonic() < deadline, "no snapshot"
            time.sleep(0.2)
        _reads(client, "/health", 20, {})
        cpu_before = _cpu_seconds(pid)
        health = _reads(client, "/health", reads, {})
        cpu_health = _cpu_seconds(pid) - cpu_before
        got = _reads(client, "/internal/v1/get_weights", reads, headers)
        cpu_get = _cpu_seconds(pid) - cpu_before - cpu_health
        body = client.get("/internal/v1/get_weights", headers=headers).json()
    assert body["weights"].keys() == weights.keys()
    return {
        "recompute_s": recompute_cpu,
        "weights": float(len(weights)),
        "health_p99": _p(health, 99),
        "get_p50": _p(got, 50),
        "get_p99": _p(got, 99),
        "cpu_ratio": cpu_get / max(cpu_health, 1e-9),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    os.environ["PRISM_SHARED_TOKEN"] = TOKEN
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows[size] = run_size(size, args.reads, Path(tmp))
    print(
        f"{'hotkeys':>8} {'weights':>8} {'recompute':>10} {'growth':>7}  {'get p50':>8} {'get p99':>8}"
        f"  {'health p99':>10}  {'p99 ratio':>9}  {'server CPU get/health':>21}"
    )
    previous = None
    for size, row in rows.items():
        growth = f"{row['recompute_s'] / previous:6.1f}x" if previous else "      -"
        previous = row["recompute_s"]
        print(
            f"{size:>8} {row['weights']:>8.0f} {row['recompute_s']:>9.2f}s {growth}  {row['get_p50']:>6.2f}ms"
            f" {row['get_p99']:>6.2f}ms  {row['health_p99']:>8.2f}ms  {row['get_p99'] / row['health_p99']:>8.2f}x"
            f"  {row['cpu_ratio']:>20.2f}x"
        )
    largest = rows[max(rows)]
    verdict = "met" if largest["get_p99"] < 10 else "NOT met"
    print(f"goal: get_weights p99 < 10 ms at {max(rows):,} hotkeys -> {largest['get_p99']:.2f} ms ({verdict})")
    print("recompute: CPU of one background refresh (never on the read path)")


if __name__ == "__main__":
    main()
