"""get_weights at 1k, 10k and 100k scored hotkeys: the read path against `GET /health`.

Each size gets a fresh database with that many completed, score-eligible results (one family
per four hotkeys, every family with a stored graph). Printed per size:

- the CPU of one background recompute (what the refresher does when results change) and its
  growth from the size before (n log n: about 10x per 10x, where the old path grew n^1.5);
- the snapshot: weights in it, bytes of the rendered answer, and the memory it holds
  (tracemalloc of the cache after a refresh, everything it retains);
- p50/p99 of `GET /internal/v1/get_weights` and of `GET /health` (the baseline: same server,
  same client, same run, in alternating blocks so drift hits both) over real HTTP, their ratio,
  and the server's CPU per read of each;
- the change marker the refresher reads every `weights_refresh_seconds`: median wall time of
  one read of the weights generation row, against the count-based marker it replaced (three
  `count(*)` and a `max`, kept here as the baseline) measured in the same run, on SQLite and,
  with `--postgres URL`, on PostgreSQL (a schema per size, replaced; VACUUM ANALYZE first, the
  counts' best case: index-only scans on an all-visible table).

The server is `prism serve` as deployed (its own process, default log level with an access line
per request, default refresh interval); the client is `benchmarks/loadgen.py` in another
process, one keep-alive connection, after a warm-up. The route returns bytes rendered once per
snapshot; the recompute runs in the background refresher when results change, never in a read.

    .venv/bin/python benchmarks/weights.py [--sizes 1000,10000,100000] [--reads 2000]
        [--postgres postgresql+psycopg://...] [--marker-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import LoadResult, http_request, run_load
from benchmarks.served import cpu_seconds, served
from tests.scored import seed_scored

from prism.api.weights import WeightsCache, change_marker
from prism.config import Settings
from prism.store.base import utcnow
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import Architecture, Evaluation, RuntimeConfigRow, Submission
from prism.store.submissions import epoch_at

TOKEN = "benchmark-token"
BLOCKS = 5  # health and get_weights alternate in this many blocks each


def count_marker(session: Session, settings: Settings) -> tuple[int, int, int, int | None, int]:
    """The marker before issue 19's follow-up (the baseline): O(n) in the results."""
    return (
        int(session.scalar(select(func.count()).select_from(Submission).where(Submission.status == "completed")) or 0),
        int(session.scalar(select(func.count()).select_from(Evaluation)) or 0),
        int(session.scalar(select(func.count()).select_from(Architecture)) or 0),
        session.scalar(select(func.max(RuntimeConfigRow.version))),
        epoch_at(utcnow(), settings.epoch_seconds),
    )


def marker_costs(
    sessions: sessionmaker[Session], settings: Settings, *, rounds: int = 7, calls: int = 20
) -> dict[str, float]:
    """Median ms per marker read, generation row vs counts, alternating rounds so drift hits both."""
    times: dict[str, list[float]] = {"generation": [], "counts": []}
    markers = {"generation": change_marker, "counts": count_marker}
    with sessions() as session:
        for marker in markers.values():  # warm caches and prepared statements
            marker(session, settings)
            session.rollback()
        for _ in range(rounds):
            for name, marker in markers.items():
                started = time.perf_counter()
                for _ in range(calls):
                    marker(session, settings)
                    session.rollback()  # each read in its own transaction, as the refresher does
                times[name].append((time.perf_counter() - started) / calls * 1000)
    return {name: sorted(values)[len(values) // 2] for name, values in times.items()}


def seeded(url: str, size: int, settings: Settings) -> sessionmaker[Session]:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        seed_scored(session, hotkeys=size, families=max(1, size // 4), epoch=epoch_at(utcnow(), settings.epoch_seconds))
    return sessions


def postgres_marker_costs(base_url: str, size: int, tmp: Path) -> dict[str, float]:
    schema = f"prism_weights_{size}"
    admin = make_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"
    settings = Settings(data_dir=tmp, database_url=url)
    sessions = seeded(url, size, settings)
    engine = sessions.kw["bind"]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    costs = marker_costs(sessions, settings)
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    return costs


def _snapshot_memory(settings: Settings, sessions: object) -> int:
    """Bytes the cache retains after one refresh (snapshot, rendered body, marker)."""
    tracemalloc.start()
    try:
        cache = WeightsCache(settings, sessions)  # type: ignore[arg-type]
        before = tracemalloc.get_traced_memory()[0]
        cache.refresh()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del cache
    return retained


def _merge(results: list[LoadResult]) -> list[float]:
    return [latency for result in results for latency in result.latencies]


def _q(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run_size(size: int, reads: int, tmp: Path, *, marker_only: bool = False) -> dict[str, float]:
    url = f"sqlite:///{tmp}/weights-{size}.db"
    settings = Settings(data_dir=tmp, database_url=url)
    sessions = seeded(url, size, settings)
    engine = sessions.kw["bind"]
    marker = marker_costs(sessions, settings)
    if marker_only:
        engine.dispose()
        return {"marker_ms": marker["generation"], "counts_ms": marker["counts"]}
    # The recompute the background refresher runs when results change (timed here on its own).
    cache = WeightsCache(settings, sessions)
    started = time.process_time()
    cache.refresh()
    recompute_cpu = time.process_time() - started
    weights = cache.get().weights
    body_bytes = len(cache.body())
    del cache
    memory = _snapshot_memory(settings, sessions)
    engine.dispose()
    env = {"PRISM_DATABASE_URL": url, "PRISM_DATA_DIR": str(tmp), "PRISM_SHARED_TOKEN": TOKEN}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    health_request = [http_request("GET", "/health", {})]
    weights_request = [http_request("GET", "/internal/v1/get_weights", auth)]
    per_block = max(1, reads // BLOCKS)
    health: list[LoadResult] = []
    got: list[LoadResult] = []
    cpu = {"health": 0.0, "get": 0.0}
    with served(env, log=tmp / f"server-{size}.log") as (base, pid):
        deadline = time.monotonic() + 600
        while not httpx.get(f"{base}/internal/v1/get_weights", headers=auth, timeout=60).json()["weights"]:
            assert time.monotonic() < deadline, "no snapshot"
            time.sleep(0.2)
        run_load(base, health_request * 200, tmp, connections=1)  # warm-up, both routes
        run_load(base, weights_request * 50, tmp, connections=1)
        for _ in range(BLOCKS):
            for name, request, into in (("health", health_request, health), ("get", weights_request, got)):
                before = cpu_seconds(pid)
                into.append(run_load(base, request * per_block, tmp, connections=1))
                cpu[name] += cpu_seconds(pid) - before
        body = httpx.get(f"{base}/internal/v1/get_weights", headers=auth, timeout=60).json()
        # One more scored result: the refresher recomputes in the server process (seconds at 100k,
        # Python holding the GIL) while these reads go on.
        engine = make_engine(url)
        with make_session_factory(engine)() as session, session.begin():
            seed_scored(
                session, hotkeys=1, families=1, epoch=epoch_at(utcnow(), settings.epoch_seconds), seed=1, start=size
            )
        engine.dispose()
        during = run_load(base, weights_request * per_block, tmp, connections=1)
        considered = 0
        while considered != size + 1:  # the recompute did happen (and has ended)
            assert time.monotonic() < deadline + 600, "no recompute"
            got_now = httpx.get(f"{base}/internal/v1/get_weights", headers=auth, timeout=60).json()
            considered = got_now["metadata"].get("submissions_considered", 0)
            time.sleep(0.2)
    assert body["weights"].keys() == weights.keys()
    assert all(r.statuses == {200: per_block} for r in health + got), "a read failed"
    health_lat, got_lat = _merge(health), _merge(got)
    count = per_block * BLOCKS
    return {
        "marker_ms": marker["generation"],
        "counts_ms": marker["counts"],
        "recompute_s": recompute_cpu,
        "weights": float(len(weights)),
        "bytes": float(body_bytes),
        "memory": float(memory),
        "health_p50": _q(health_lat, 0.5),
        "health_p99": _q(health_lat, 0.99),
        "get_p50": _q(got_lat, 0.5),
        "get_p99": _q(got_lat, 0.99),
        "health_cpu_ms": cpu["health"] / count * 1000,
        "get_cpu_ms": cpu["get"] / count * 1000,
        "client_cpu_ms": sum(r.client_cpu_seconds for r in got) / count * 1000,
        "during_p99": during.quantile_ms(0.99),
        "during_reads": float(len(during.latencies)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--reads", type=int, default=2000, help="reads of each route, in alternating blocks")
    parser.add_argument("--postgres", default="", help="also time the change markers on PostgreSQL at this URL")
    parser.add_argument("--marker-only", action="store_true", help="only the change markers (no server, no reads)")
    args = parser.parse_args()
    os.environ["PRISM_SHARED_TOKEN"] = TOKEN
    rows: dict[int, dict[str, float]] = {}
    postgres: dict[int, dict[str, float]] = {}
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            rows[size] = run_size(size, args.reads, Path(tmp), marker_only=args.marker_only)
            if args.postgres:
                postgres[size] = postgres_marker_costs(args.postgres, size, Path(tmp))
    print(f"cores={os.cpu_count()} load average={os.getloadavg()[0]:.1f} reads per route={args.reads}")
    print("change marker, median ms per read (each in its own transaction): generation row vs the old counts")
    tables = {
        "sqlite": {size: (row["marker_ms"], row["counts_ms"]) for size, row in rows.items()},
        "postgresql": {size: (row["generation"], row["counts"]) for size, row in postgres.items()},
    }
    for backend, table in tables.items():
        for size, (generation, counts) in table.items():
            print(
                f"  {backend:>10} {size:>8} hotkeys: generation {generation:7.3f} ms, counts {counts:8.3f} ms,"
                f" counts/generation {counts / generation:7.1f}x"
            )
    if args.marker_only:
        return
    print(
        f"{'hotkeys':>8} {'weights':>7} {'bytes':>9} {'memory':>8} {'recompute':>9} {'growth':>6}"
        f"  {'get p50/p99 ms':>15}  {'health p50/p99 ms':>17}  {'p99 ratio':>9}  {'server CPU/read get, health':>27}"
    )
    previous = None
    for size, row in rows.items():
        growth = f"{row['recompute_s'] / previous:5.1f}x" if previous else "     -"
        previous = row["recompute_s"]
        print(
            f"{size:>8} {row['weights']:>7.0f} {row['bytes'] / 1e6:>7.2f}MB {row['memory'] / 1e6:>6.1f}MB"
            f" {row['recompute_s']:>8.2f}s {growth}  {row['get_p50']:>6.2f} / {row['get_p99']:>6.2f}"
            f"  {row['health_p50']:>7.2f} / {row['health_p99']:>7.2f}  {row['get_p99'] / row['health_p99']:>8.2f}x"
            f"  {row['get_cpu_ms']:>12.3f} ms, {row['health_cpu_ms']:.3f} ms"
        )
    for size, row in rows.items():
        print(
            f"{size:>8}: get_weights p99 {row['during_p99']:.2f} ms over {row['during_reads']:.0f} reads started as a"
            " background recompute began (one new scored result)"
        )
    largest = rows[max(rows)]
    verdict = "met" if largest["get_p99"] < 10 else "NOT met"
    print(f"goal: get_weights p99 < 10 ms at {max(rows):,} hotkeys -> {largest['get_p99']:.2f} ms ({verdict})")
    print(
        f"client (loadgen, own process) CPU per get_weights read at {max(rows):,}: {largest['client_cpu_ms']:.3f} ms;"
        " recompute: CPU of one background refresh (never on the read path)"
    )


if __name__ == "__main__":
    main()
