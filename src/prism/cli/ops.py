"""Operator and miner commands: `status`, `submit`, `review-queue`, `runtime-config`.

Each operator command works on the local database (found the way the server finds it:
`PRISM_DATABASE_URL`, else `prism.db` under `PRISM_DATA_DIR`) or, with `--url` and the operator
token, on a running PRISM over HTTP. A local command never creates a database: a missing one is
a wrong folder or a wrong `PRISM_DATA_DIR`, and an empty database there would answer "nothing"
instead of saying so. Exit statuses are listed in `prism.cli.client`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from prism.cli import app
from prism.cli.client import (
    EXIT_COMPLETED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CliFailure,
    PrismClient,
    Progress,
    exit_code_for,
    print_journey,
    reports_failures,
    zip_project,
)
from prism.config import Settings, get_settings
from prism.errors import ConfigError
from prism.pipeline.resolution import Action, NotResolvable, resolve, review_queue
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import Submission
from prism.store.runtime_config_history import runtime_config_history
from prism.store.runtime_configs import load_runtime_config, set_runtime_config

queue_app = typer.Typer(no_args_is_help=True, help="Quarantined and held submissions.")
config_app = typer.Typer(no_args_is_help=True, help="The SQL runtime config (GPU profile, budgets, policies).")
app.add_typer(queue_app, name="review-queue")
app.add_typer(config_app, name="runtime-config")

DEFAULT_URL = "http://127.0.0.1:8000"
URL_HELP = "A running PRISM's URL; without it, the local database is used."
OPERATOR_TOKEN = typer.Option(
    None, "--token", envvar="PRISM_OPERATOR_TOKEN", help="The operator token (with --url).", show_default=False
)


def missing_database(settings: Settings) -> Path | None:
    """The SQLite file the settings name, when it does not exist (None for other databases)."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return None if path.is_file() else path.resolve()


def local_sessions() -> sessionmaker[Session]:
    settings = get_settings()
    missing = missing_database(settings)
    if missing is not None:
        raise CliFailure(
            f"no PRISM database at {missing} (PRISM_DATA_DIR is {settings.data_dir}); run this where PRISM runs,"
            " set PRISM_DATA_DIR or PRISM_DATABASE_URL as the server has them, or pass --url to ask a running PRISM"
            " (`prism db upgrade` creates a new database on purpose)"
        )
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    return make_session_factory(engine)


def _emit(data: Any, as_json: bool) -> bool:
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    return as_json


def _operator_client(url: str, token: str | None) -> PrismClient:
    if not token:
        raise CliFailure("--url needs the operator token: --token or PRISM_OPERATOR_TOKEN", EXIT_USAGE)
    return PrismClient(url, token)


@app.command()
@reports_failures
def status(
    submission_id: str,
    url: str | None = typer.Option(None, envvar="PRISM_URL", help=URL_HELP),
    token: str | None = typer.Option(None, envvar="PRISM_TOKEN", help="Bearer token for the full view."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A submission's state, reason, every stage's decision and evidence, and its scores."""
    if url:
        client = PrismClient(url, token)
        view = client.full(submission_id) if token else client.public(submission_id)
    else:
        from prism.api.views import full_submission_view

        with local_sessions()() as session:
            submission = session.get(Submission, submission_id)
            if submission is None:
                raise CliFailure(f"no submission {submission_id}")
            view = full_submission_view(session, submission, operator=True)
    if not _emit(view, as_json):
        print_journey(view)


@app.command()
@reports_failures
def submit(
    path: Path = typer.Argument(..., exists=True, help="A project folder, a .zip or a .py file."),
    url: str = typer.Option(DEFAULT_URL, envvar="PRISM_URL", help="PRISM's URL."),
    token: str = typer.Option(..., envvar="PRISM_TOKEN", help="The shared Platform token (local development)."),
    hotkey: str = typer.Option(
        ..., envvar="PRISM_HOTKEY", help="The hotkey to submit as (the bridge trusts it only with the token)."
    ),
    wait: bool = typer.Option(
        False, "--wait", help="Wait for a final state, showing the stage running now and the live training curve."
    ),
    timeout: float | None = typer.Option(
        None, min=1, help="With --wait: give up after this many seconds (exit 6). Default: wait for the outcome."
    ),
    poll: float = typer.Option(2.0, min=0.1, help="With --wait: seconds between polls."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Submit through the bridge, as Platform would, for local development.

    With --wait the exit status is the outcome: 0 completed, 3 rejected, 4 quarantined or held,
    5 failed, 6 still waiting at --timeout; 1 when PRISM cannot be reached or answers an error.
    """
    client = PrismClient(url, token)
    upload = zip_project(path)
    if upload.skipped and not as_json:
        typer.echo(f"left out (version control, caches, hidden files): {', '.join(upload.skipped)}", err=True)
    answer = client.submit(upload.data, upload.filename, hotkey)
    if not wait:
        if not _emit(answer, as_json):
            typer.echo(f"{answer['id']}  {answer['status']}")
        raise typer.Exit(
            EXIT_COMPLETED if answer["status"] in ("pending", "running") else exit_code_for(answer["status"])
        )
    if not as_json:
        typer.echo(f"submitted {upload.filename} as {answer['id']}; waiting")
    sid = answer["id"]
    progress = Progress(
        lambda line: None if as_json else typer.echo(line),
        curve=None if as_json else (lambda after: client.curve(sid, after=after)),
    )
    view, timed_out = client.wait(answer["id"], on_view=progress, timeout=timeout, poll=poll, full=True)
    if not _emit(view, as_json):
        print_journey(view)
        if timed_out:
            typer.echo(f"gave up waiting after {timeout:g} s; `prism status {answer['id']}` shows it later", err=True)
    raise typer.Exit(EXIT_TIMEOUT if timed_out else exit_code_for(view["status"]))


# -- review queue -----------------------------------------------------------------------------------


@queue_app.command("list")
@reports_failures
def queue_list(
    url: str | None = typer.Option(None, envvar="PRISM_URL", help=URL_HELP),
    token: str | None = OPERATOR_TOKEN,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Quarantined and held submissions, oldest first."""
    if url:
        items: list[dict[str, Any]] = _operator_client(url, token).request("GET", "/internal/v1/review-queue")["items"]
    else:
        with local_sessions()() as session:
            items = [asdict(item) for item in review_queue(session)]
    if _emit(items, as_json):
        return
    if not items:
        typer.echo("the review queue is empty")
    for item in items:
        typer.echo(f"{item['submission_id']}  {item['status']:<11} {item['reason_code'] or '':<32} {item['hotkey']}")


@queue_app.command("resolve")
@reports_failures
def queue_resolve(
    submission_id: str,
    release: bool = typer.Option(False, "--release", help="Let it continue from where it stopped."),
    reject: bool = typer.Option(False, "--reject", help="Reject it for good."),
    reason: str = typer.Option(..., help="Why (kept in the audit log)."),
    operator: str = typer.Option("cli", help="Who is deciding (local database only; remotely the token says)."),
    url: str | None = typer.Option(None, envvar="PRISM_URL", help=URL_HELP),
    token: str | None = OPERATOR_TOKEN,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Release or reject one quarantined or held submission, with a reason (audited)."""
    if release == reject:
        raise CliFailure("choose exactly one of --release or --reject", EXIT_USAGE)
    action: Action = "release" if release else "reject"
    if url:
        path = f"/internal/v1/review-queue/{submission_id}/resolve"
        result = _operator_client(url, token).request("POST", path, json={"action": action, "reason": reason})
    else:
        with local_sessions()() as session:
            try:
                submission = resolve(session, submission_id, action=action, reason=reason, actor=f"operator:{operator}")
            except NotResolvable as exc:
                raise CliFailure(str(exc)) from exc
            session.commit()
            result = {"id": submission.id, "status": submission.status}
    if not _emit(result, as_json):
        typer.echo(f"{result['id']} is now {result['status']}")


# -- runtime config ---------------------------------------------------------------------------------


@config_app.command("show")
@reports_failures
def config_show(
    url: str | None = typer.Option(None, envvar="PRISM_URL", help=URL_HELP),
    token: str | None = OPERATOR_TOKEN,
) -> None:
    """Print the active runtime config (the defaults when no row is active) as JSON."""
    if url:
        shown = _operator_client(url, token).request("GET", "/internal/v1/runtime-config")
    else:
        with local_sessions()() as session:
            try:
                active = load_runtime_config(session)
            except ConfigError as exc:
                raise CliFailure(f"the active runtime config is invalid (official runs fail closed): {exc}") from exc
        shown = {"version": active.version, "config": active.config.model_dump(mode="json")}
    typer.echo(json.dumps(shown, indent=2))


@config_app.command("set")
@reports_failures
def config_set(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A JSON or YAML document."),
    comment: str | None = typer.Option(None, help="Why it changed."),
    operator: str = typer.Option("cli", help="Who is changing it (local database only; remotely the token says)."),
    url: str | None = typer.Option(None, envvar="PRISM_URL", help=URL_HELP),
    token: str | None = OPERATOR_TOKEN,
) -> None:
    """Validate a runtime-config document and make it the active version."""
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CliFailure(f"{file} is not valid JSON or YAML: {exc}", EXIT_USAGE) from exc
    if url:
        body = {"config": document or {}, "comment": comment}
        version = _operator_client(url, token).request("PUT", "/internal/v1/runtime-config", json=body)["version"]
    else:
        with local_sessions()() as session:
            try:
                version = set_runtime_config(session, document or {}, actor=f"operator:{operator}", comment=comment)
            except ConfigError as exc:
                raise CliFailure(str(exc)) from exc
            session.commit()
    typer.echo(f"runtime config version {version} is active")


@config_app.command("history")
@reports_failures
def config_history(
    limit: int = typer.Option(20, min=1, max=1000, help="How many versions, newest first."),
    url: str | None = typer.Option(None, envvar="PRISM_URL", help=URL_HELP),
    token: str | None = OPERATOR_TOKEN,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every runtime-config version: who set it, when, why, and which values it changed."""
    if url:
        path = f"/internal/v1/runtime-config/history?limit={limit}"
        entries: list[dict[str, Any]] = _operator_client(url, token).request("GET", path)["versions"]
    else:
        with local_sessions()() as session:
            entries = [entry.to_json() for entry in runtime_config_history(session, limit=limit)]
    if _emit(entries, as_json):
        return
    if not entries:
        typer.echo("no runtime config was ever set; the defaults apply")
    for entry in entries:
        marker = " (active)" if entry["active"] else ""
        typer.echo(f"version {entry['version']}{marker}  {entry['created_at']}  by {entry['created_by']}")
        if entry.get("comment"):
            typer.echo(f"  why: {entry['comment']}")
        for change in entry["changes"]:
            typer.echo(f"  {change['key']}: {json.dumps(change['before'])} -> {json.dumps(change['after'])}")
