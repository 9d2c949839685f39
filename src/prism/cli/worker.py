"""`prism worker` and `prism demo` (PRISM in-process, one submission taken to a score)."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from pathlib import Path

import typer

from prism.cli import app
from prism.cli.client import reports_failures
from prism.config import Settings, get_settings
from prism.config_check import configuration_problems
from prism.errors import ConfigError
from prism.logs import configure_logging
from prism.pipeline.review_lane import ReviewLane
from prism.pipeline.worker import Worker
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade, upgrade_when_ready

log = logging.getLogger(__name__)
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "tiny_transformer"


def _worker(settings: Settings) -> Worker:
    engine = make_engine(settings.resolved_database_url)
    upgrade_when_ready(engine)  # a database outage at start-up is waited out, never an exit
    return Worker(settings, make_session_factory(engine))


def start_review_lane(worker: Worker, stop: threading.Event) -> None:
    """Review verdicts beside the worker, so none waits behind a training run (`review_lane`)."""
    lane = ReviewLane(worker.settings, worker.sessions)
    threading.Thread(target=_loop, args=(lane, stop), name="review-lane", daemon=True).start()


def _loop(worker: Worker, stop: threading.Event) -> None:
    failures = 0
    while not stop.is_set():
        try:
            idle = worker.run_once() is None
            failures = 0
        except Exception:
            failures += 1
            log.exception("worker loop failed; retrying")
            stop.wait(min(60.0, worker.settings.worker_poll_seconds * 2**failures))
            continue
        if idle:
            stop.wait(worker.settings.worker_poll_seconds)


def start_worker_thread(settings: Settings) -> threading.Event:
    """A worker loop in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    worker = _worker(settings)
    threading.Thread(target=_loop, args=(worker, stop), name="worker", daemon=True).start()
    start_review_lane(worker, stop)
    return stop


@app.command("worker")
def worker_command(
    once: bool = typer.Option(False, "--once", help="Process at most one submission, then exit."),
    drain: bool = typer.Option(False, "--drain", help="Process until the queue is empty, then exit."),
) -> None:
    """Claim submissions and take each from review to score (runs until stopped)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    problems = configuration_problems()
    if problems:  # found at start, not halfway through a submission
        raise ConfigError("; ".join(problems))
    worker = _worker(settings)
    if once:
        processed = worker.run_once()
        typer.echo(f"processed {processed}" if processed else "queue is empty")
        return
    if drain:
        typer.echo(f"processed {worker.drain()} submission(s)")
        return
    stop = threading.Event()
    # SIGTERM (a deploy, a scale-down): finish the submission in hand, then exit. Ctrl-C stops at
    # once; the lease then runs out and another worker resumes after the last finished stage.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    start_review_lane(worker, stop)
    try:
        _loop(worker, stop)
    except KeyboardInterrupt:
        stop.set()


def _start_background(settings: Settings, host: str, port: int) -> threading.Event:
    import uvicorn

    from prism.api.app import create_app

    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, engine=engine), host=host, port=port, log_level="warning", log_config=None)
    )
    threading.Thread(target=server.run, name="api", daemon=True).start()
    stop = start_worker_thread(settings)
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return stop


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@app.command("demo")
@reports_failures
def demo(
    project: Path = typer.Option(EXAMPLE, help="Project folder to submit (default: the bundled tiny transformer)."),
    hotkey: str = typer.Option("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", help="Hotkey to submit as."),
) -> None:
    """Start PRISM in-process, submit a project through the bridge, and print its journey to a score."""
    from prism.cli.client import CliFailure, PrismClient, Progress, exit_code_for, print_journey, zip_project

    settings = get_settings()
    configure_logging("WARNING", settings.log_format)
    token = settings.shared_token
    if not token:
        raise CliFailure("set PRISM_SHARED_TOKEN_FILE (or PRISM_SHARED_TOKEN) first", 2)
    port = _free_port()
    stop = _start_background(settings, "127.0.0.1", port)
    client = PrismClient(f"http://127.0.0.1:{port}", token)
    upload = zip_project(project)
    answer = client.submit(upload.data, upload.filename, hotkey)
    typer.echo(f"submitted {upload.filename} as {answer['id']} ({answer['status']})")
    sid = answer["id"]
    progress = Progress(typer.echo, curve=lambda after: client.curve(sid, after=after))
    final, _ = client.wait(sid, on_view=progress, full=True)
    print_journey(final)
    stop.set()
    raise typer.Exit(exit_code_for(final["status"]))
