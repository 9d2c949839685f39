"""Bridge intake under load, with the server in its own process(es) and the client in another.

Load mode (default): `prism serve` (as deployed: default log level, `--workers N` processes)
takes distinct submissions from `benchmarks/loadgen.py`, a raw HTTP/1.1 client in its own
process whose CPU is printed too. In one run, against the same server:

- baseline: `GET /health` by the same client, closed loop (`--clients` connections);
- submissions, closed loop: the most the server takes (`--total` uploads);
- submissions, open loop: `--rate` uploads a second for `--seconds`, each latency counted from
  when the upload was due (a server that falls behind is charged for it): the goal's figure;
- get_weights with `--scored` scored hotkeys in the database, closed loop;
- nothing lost: every upload answered 201 is in the database, and every upload was answered 201;
- the server's CPU per submission and per health check (all its processes, from /proc), and
  where a submission's CPU goes (the request path's own pieces, measured in this process).

Paced mode (`--paced 5 --seconds 60 --workers 1`): submissions at a fixed rate while real
`prism worker` processes (bubblewrap sandbox) take them; afterwards it counts "database is
locked" in the workers' logs and infrastructure retries in the audit log (both must be 0).
A full worker spends minutes per evaluation, so it meets few uploads; `--review-only` stops
each submission after the review steps (the read-then-write source-duplicate check included),
so the workers claim and write hundreds of times while the uploads commit.

    .venv/bin/python benchmarks/intake.py [--server-workers 2] [--clients 50] [--total 1000] [--rate 200]
        [--database-url URL]
    .venv/bin/python benchmarks/intake.py --paced 5 --seconds 60 [--review-only] [--workers 2 --database-url URL]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import LoadResult, http_request, run_load
from benchmarks.served import cpu_seconds, served
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


def _result_line(name: str, result: LoadResult, unit: str) -> str:
    client_ms = result.client_cpu_seconds / len(result.latencies) * 1000
    return (
        f"{name:<34}: {result.rate:8.1f} {unit}/s  p50 {result.quantile_ms(0.5):7.1f} ms"
        f"  p99 {result.quantile_ms(0.99):7.1f} ms  client CPU {client_ms:.3f} ms/req"
    )


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
    paced_total = int(args.rate * args.seconds)
    archives = [_archive(i) for i in range(args.total + paced_total + 200)]
    uploads = [
        http_request("POST", "/internal/v1/bridge/submissions", _headers(i), archives[i])
        for i in range(args.total + paced_total)
    ]
    health = [http_request("GET", "/health", {})]
    weights = [http_request("GET", "/internal/v1/get_weights", _headers(0))]
    work = tmp / "load"
    with served(_env(url, tmp), workers=args.server_workers, log=tmp / "server.log") as (base, pid):
        deadline = time.monotonic() + 300
        while not httpx.get(f"{base}/internal/v1/get_weights", headers=_headers(0)).json()["weights"]:
            assert time.monotonic() < deadline, "no weights snapshot"
            time.sleep(0.2)
        run_load(base, health * 500, work, connections=args.clients)  # warm-up
        cpu = cpu_seconds(pid)
        baseline = run_load(base, health * args.total, work, connections=args.clients)
        health_cpu = (cpu_seconds(pid) - cpu) / args.total
        cpu = cpu_seconds(pid)
        closed = run_load(base, uploads[: args.total], work, connections=args.clients)
        sub_cpu = (cpu_seconds(pid) - cpu) / args.total
        opened = run_load(base, uploads[args.total :], work, connections=args.clients, rate=args.rate)
        got = run_load(base, weights * args.total, work, connections=args.clients)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        stored = session.scalar(select(func.count()).select_from(Submission).where(Submission.hotkey.in_(HOTKEYS)))
    engine.dispose()
    created = closed.statuses.get(201, 0) + opened.statuses.get(201, 0)
    sent = args.total + paced_total
    print(
        f"database={engine.dialect.name} cores={os.cpu_count()} server processes={args.server_workers}"
        f" connections={args.clients} load average={os.getloadavg()[0]:.1f}"
    )
    print(_result_line("baseline GET /health (closed)", baseline, "req"))
    print(_result_line("bridge submissions (closed)", closed, "sub"))
    print(_result_line(f"bridge submissions (open, {args.rate:g}/s)", opened, "sub"))
    print(_result_line(f"get_weights ({args.scored} scored hotkeys)", got, "req"))
    print(f"answers: closed {closed.statuses}, open {opened.statuses}, get_weights {got.statuses}")
    lost = not (stored == created == sent)
    print(f"sent {sent}, answered 201 {created}, stored {stored} (nothing lost: {not lost})")
    print(f"server CPU per submission {sub_cpu * 1000:.2f} ms, per health check {health_cpu * 1000:.2f} ms")
    print(f"ratio throughput submissions/health (closed) = {closed.rate / baseline.rate:.2f}")
    print(f"ratio server CPU submission/health          = {sub_cpu / health_cpu:.2f}")
    print(f"ratio p99 get_weights/health                = {got.quantile_ms(0.99) / baseline.quantile_ms(0.99):.2f}")
    kept_up = opened.rate >= 0.98 * args.rate
    goal = args.rate >= 200 and kept_up and opened.quantile_ms(0.99) < 100 and closed.rate >= 200 and not lost
    print(
        f"goal >= 200 sub/s with p99 < 100 ms, nothing lost: {'met' if goal else 'NOT met'} on this machine"
        f" (open loop {opened.rate:.0f}/s p99 {opened.quantile_ms(0.99):.1f} ms; closed loop {closed.rate:.0f}/s)"
    )
    print("where a submission's server CPU goes:")
    print(f"  total (server processes, measured)      : {sub_cpu * 1000:6.2f} ms")
    print(f"  HTTP path of a health check (baseline)   : {health_cpu * 1000:6.2f} ms")
    profile_request_path(url, archives[sent:])


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
    parser.add_argument("--clients", type=int, default=50, help="connections of the load generator")
    parser.add_argument("--total", type=int, default=1000, help="uploads in the closed loop")
    parser.add_argument("--rate", type=float, default=200.0, help="uploads per second in the open loop")
    parser.add_argument("--server-workers", type=int, default=2, help="`prism serve --workers`")
    parser.add_argument("--scored", type=int, default=10_000, help="scored hotkeys present for get_weights")
    parser.add_argument("--database-url", default=None, help="an empty database (default: a new SQLite file)")
    parser.add_argument("--paced", type=float, default=0.0, help="submissions per second (paced mode)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the open loop or of paced mode")
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
