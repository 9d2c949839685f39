"""Bridge intake under load, with the server in its own process and the clients in this one.

Load mode (default): `--clients` concurrent clients send `--total` distinct submissions to a
`prism serve` subprocess; baseline in the same run is the same clients calling `GET /health`.
Printed: submissions/s, p99, the server's CPU per submission and per health check (read from
/proc of the server process), get_weights measured while `--scored` scored hotkeys are in the
database, and where the server's CPU per submission goes (a profile of the request path's own
pieces, measured in this process on the same archives).

Paced mode (`--paced 5 --seconds 60 --workers 1`): submissions at a fixed rate while real
`prism worker` processes (bubblewrap sandbox) take them; afterwards it counts "database is
locked" in the workers' logs and infrastructure retries in the audit log (both must be 0).
A full worker spends minutes per evaluation, so it meets few uploads; `--review-only` stops
each submission after the review steps (the read-then-write source-duplicate check included),
so the workers claim and write hundreds of times while the uploads commit.

    .venv/bin/python benchmarks/intake.py [--clients 50] [--total 1000] [--database-url URL]
    .venv/bin/python benchmarks/intake.py --paced 5 --seconds 60 [--review-only] [--workers 2 --database-url URL]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.served import served
from tests.scored import seed_scored

from prism.config import Settings
from prism.intake.archive import read_project
from prism.intake.limits import IntakeLimits
from prism.pipeline.accept import accept_submission
from prism.store.base import utcnow
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import AuditEvent, Submission
from prism.store.submissions import epoch_at

TOKEN = "benchmark-token"
HOTKEYS = (
    "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
    "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
    "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y",
    "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy",
)
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tiny_transformer"


def _archive(index: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(EXAMPLE.iterdir()):
            if path.is_file() and path.suffix in (".py", ".yaml"):
                source = path.read_text()
                archive.writestr(path.name, source + (f"\nVARIANT = {index}\n" if path.name == "model.py" else ""))
    return buffer.getvalue()


def _headers(index: int) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {TOKEN}",
        "X-Base-Verified-Hotkey": HOTKEYS[index % len(HOTKEYS)],
        "X-Submission-Filename": "project.zip",
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def _env(url: str, data_dir: Path) -> dict[str, str]:
    return {"PRISM_DATABASE_URL": url, "PRISM_DATA_DIR": str(data_dir), "PRISM_SHARED_TOKEN": TOKEN}


def profile_request_path(url: str, archives: list[bytes]) -> None:
    """Where a submission's server CPU goes, piece by piece (same archives, this process)."""
    settings = Settings(database_url=url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    limits = IntakeLimits.from_settings(settings)

    def store(index: int, data: bytes) -> None:
        with sessions() as session:
            session.connection(execution_options={"immediate": True})
            accept_submission(
                session,
                settings,
                hotkey=HOTKEYS[index % len(HOTKEYS)],
                filename="project.zip",
                data=data,
                origin="bridge",
                actor="platform",
            )
            session.commit()

    started = time.process_time()
    for data in archives:
        read_project(data, "project.zip", limits=limits)
    intake_ms = (time.process_time() - started) / len(archives) * 1000
    half = len(archives) // 2
    started = time.process_time()
    for index, data in enumerate(archives[:half]):
        store(index, data)
    store_ms = (time.process_time() - started) / half * 1000 - intake_ms
    profiler = cProfile.Profile()  # on the other half: the profiler's own cost stays out of the figures
    profiler.enable()
    for index, data in enumerate(archives[half:], start=half):
        store(index, data)
    profiler.disable()
    engine.dispose()
    print(f"  intake (unzip, limits, prism.yaml)      : {intake_ms:6.2f} ms")
    print(f"  one transaction storing it (SQL + ORM)   : {store_ms:6.2f} ms")
    print("  the rest: HTTP parsing, auth, body read, edge checks, thread hop, JSON answer")
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(12)
    lines = [line for line in report.getvalue().splitlines() if line.strip()][-13:]
    print("  top functions of the store path (tottime):")
    for line in lines:
        print("    " + line[:150])


def load(args: argparse.Namespace, tmp: Path) -> None:
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        seed_scored(session, hotkeys=args.scored, families=max(1, args.scored // 4), epoch=epoch_at(utcnow(), 4320))
    engine.dispose()
    archives = [_archive(i) for i in range(args.total + 200)]

    def submit(http: httpx.Client, i: int) -> None:
        response = http.post("/internal/v1/bridge/submissions", headers=_headers(i), content=archives[i])
        assert response.status_code == 201, response.text

    def health(http: httpx.Client, _i: int) -> None:
        assert http.get("/health").status_code == 200

    def weights(http: httpx.Client, _i: int) -> None:
        response = http.get("/internal/v1/get_weights", headers=_headers(0))
        assert response.status_code == 200 and response.json()["weights"]

    with served(_env(url, tmp)) as (base, pid):
        deadline = time.monotonic() + 300
        while not httpx.get(f"{base}/internal/v1/get_weights", headers=_headers(0)).json()["weights"]:
            assert time.monotonic() < deadline, "no weights snapshot"
            time.sleep(0.2)
        _load(base, args.clients, 200, health)  # warm-up
        cpu = _cpu_seconds(pid)
        base_s, base_lat = _load(base, args.clients, args.total, health)
        health_cpu = (_cpu_seconds(pid) - cpu) / args.total
        cpu = _cpu_seconds(pid)
        sub_s, sub_lat = _load(base, args.clients, args.total, submit)
        sub_cpu = (_cpu_seconds(pid) - cpu) / args.total
        w_s, w_lat = _load(base, args.clients, args.total, weights)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        stored = session.scalar(select(func.count()).select_from(Submission).where(Submission.hotkey.in_(HOTKEYS)))
    engine.dispose()
    cores = os.cpu_count()
    print(f"clients={args.clients} requests={args.total} database={engine.dialect.name} cores={cores}")
    print(f"baseline GET /health : {args.total / base_s:8.1f} req/s   p99 {_p99(base_lat) * 1000:7.1f} ms")
    print(f"bridge submissions   : {args.total / sub_s:8.1f} sub/s   p99 {_p99(sub_lat) * 1000:7.1f} ms")
    print(
        f"get_weights          : {args.total / w_s:8.1f} req/s   p99 {_p99(w_lat) * 1000:7.1f} ms"
        f"   ({args.scored} scored hotkeys)"
    )
    print(f"stored {stored} of {args.total} submissions (nothing lost: {stored == args.total})")
    print(f"server CPU per submission {sub_cpu * 1000:.2f} ms, per health check {health_cpu * 1000:.2f} ms")
    print(f"ratio throughput submissions/health = {(args.total / sub_s) / (args.total / base_s):.2f}")
    print(f"ratio server CPU submission/health  = {sub_cpu / health_cpu:.2f}")
    print(f"ratio p99 get_weights/health        = {_p99(w_lat) / _p99(base_lat):.2f}")
    goal = args.total / sub_s >= 200 and _p99(sub_lat) < 0.1
    print(f"goal >= 200 sub/s with p99 < 100 ms: {'met' if goal else 'NOT met'} on this machine")
    print("where a submission's server CPU goes:")
    print(f"  total (server process, measured)        : {sub_cpu * 1000:6.2f} ms")
    print(f"  HTTP path of a health check (baseline)   : {health_cpu * 1000:6.2f} ms")
    profile_request_path(url, archives[args.total : args.total + 200])


def paced(args: argparse.Namespace, tmp: Path) -> None:
    url = args.database_url or f"sqlite:///{tmp}/paced.db"
    env = _env(url, tmp)
    logs = [tmp / f"worker-{i}.log" for i in range(args.workers)]
    archives = [_archive(i) for i in range(int(args.paced * args.seconds))]
    with served(env) as (base, _pid):
        command = [sys.executable, "-m", "prism", "worker"]
        if args.review_only:
            command = [sys.executable, __file__, "--as-review-worker"]
        workers = [
            subprocess.Popen(
                command,
                env={**os.environ, **env, "PRISM_LOG_LEVEL": "INFO", "PRISM_WORKER_POLL_SECONDS": "0.2"},
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        statuses = []
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=120) as http:
            for i, data in enumerate(archives):
                time.sleep(max(0.0, started + i / args.paced - time.monotonic()))
                response = http.post("/internal/v1/bridge/submissions", headers=_headers(i), content=data)
                statuses.append(response.status_code)
        time.sleep(args.settle)
        for worker in workers:
            worker.send_signal(signal.SIGINT)  # stop now; a submission in hand is taken up again later
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        retries = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.reason_code.in_(("infrastructure_retry", "infrastructure")))
        )
        locked_reasons = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.reason.like("%database is locked%"))
        )
        states = dict(session.execute(select(Submission.status, func.count()).group_by(Submission.status)).all())
        attempts = session.scalar(select(func.count()).select_from(AuditEvent).where(text("to_status = 'running'")))
    engine.dispose()
    locked_logs = sum(log.read_text(errors="replace").count("database is locked") for log in logs)
    kind = "review-only" if args.review_only else "full"
    print(f"paced {args.paced}/s for {args.seconds}s, {args.workers} {kind} worker(s), database={engine.dialect.name}")
    print(f"bridge answers: {sorted((s, statuses.count(s)) for s in set(statuses))}")
    print(f"worker attempts (claims): {attempts}; states now: {states}")
    print(f'"database is locked" in worker logs: {locked_logs}; in stored reasons: {locked_reasons}')
    print(f"infrastructure retries spent: {retries}")


def review_worker() -> None:
    """A `prism worker` that stops after the review steps (static review, source duplicates,
    LLM review): each submission then costs the worker milliseconds, so its read-then-write
    steps meet the paced uploads hundreds of times a minute instead of once per evaluation."""
    import threading

    from prism.cli.worker import _loop, _worker
    from prism.config import get_settings
    from prism.logs import configure_logging
    from prism.pipeline import worker as worker_module
    from prism.pipeline.stages import STAGES

    review = ("static_review", "source_duplicates", "llm_review")
    worker_module.STAGES = tuple((name, step) for name, step in STAGES if name in review)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _loop(_worker(settings), stop)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--total", type=int, default=1000)
    parser.add_argument("--scored", type=int, default=10_000, help="scored hotkeys present for get_weights")
    parser.add_argument("--database-url", default=None, help="an empty database (default: a new SQLite file)")
    parser.add_argument("--paced", type=float, default=0.0, help="submissions per second (paced mode)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds the workers keep going after intake")
    parser.add_argument("--review-only", action="store_true", help="paced: workers stop after the review steps")
    parser.add_argument("--as-review-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_review_worker:
        review_worker()
        return
    os.environ["PRISM_SHARED_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as tmp:
        (paced if args.paced else load)(args, Path(tmp))


if __name__ == "__main__":
    main()
