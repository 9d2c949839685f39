"""Operator and miner commands: `status`, `submit`, `review-queue`, `runtime-config`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
import yaml
from sqlalchemy.orm import Session, sessionmaker

from prism.cli import app
from prism.cli.client import PrismClient, print_journey, zip_project
from prism.config import get_settings
from prism.errors import ConfigError
from prism.pipeline.resolution import NotResolvable, resolve, review_queue
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import Submission
from prism.store.runtime_configs import load_runtime_config, set_runtime_config

queue_app = typer.Typer(no_args_is_help=True, help="Quarantined and held submissions.")
config_app = typer.Typer(no_args_is_help=True, help="The SQL runtime config (GPU profile, budgets, policies).")
app.add_typer(queue_app, name="review-queue")
app.add_typer(config_app, name="runtime-config")


def _sessions() -> sessionmaker[Session]:
    engine = make_engine(get_settings().resolved_database_url)
    upgrade(engine)
    return make_session_factory(engine)


def _emit(data: Any, as_json: bool) -> bool:
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    return as_json


@app.command()
def status(
    submission_id: str,
    url: str | None = typer.Option(None, help="PRISM's URL; without it, the local database is read."),
    token: str | None = typer.Option(None, envvar="PRISM_TOKEN", help="Bearer token for the full view."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A submission's state, reason, every stage's decision and evidence, and its scores."""
    if url:
        client = PrismClient(url, token)
        view = client.full(submission_id) if token else client.public(submission_id)
    else:
        from prism.api.views import full_submission_view

        with _sessions()() as session:
            submission = session.get(Submission, submission_id)
            if submission is None:
                typer.echo(f"no submission {submission_id}", err=True)
                raise typer.Exit(1)
            view = full_submission_view(session, submission, operator=True)
    if not _emit(view, as_json):
        print_journey(view)


@app.command()
def submit(
    path: Path = typer.Argument(..., exists=True, help="A project folder, a .zip or a .py file."),
    url: str = typer.Option("http://127.0.0.1:8000", help="PRISM's URL."),
    token: str = typer.Option(..., envvar="PRISM_TOKEN", help="The shared Platform token (local development)."),
    hotkey: str = typer.Option(..., help="The hotkey to submit as (the bridge trusts it only with the token)."),
    wait: bool = typer.Option(False, "--wait", help="Wait for a final state, showing progress."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Submit through the bridge, as Platform would, for local development."""
    client = PrismClient(url, token)
    data, filename = zip_project(path)
    answer = client.submit(data, filename, hotkey)
    if not wait:
        if not _emit(answer, as_json):
            typer.echo(f"{answer['id']}  {answer['status']}")
        return
    if not as_json:
        typer.echo(f"submitted {answer['id']}; waiting")
    client.wait(
        answer["id"],
        on_change=lambda v: (
            None
            if as_json
            else typer.echo(
                f"  {v['status']:<11} {v.get('stage') or ''}"
                + (f"  (queue position {v['queue_position']})" if v.get("queue_position") else "")
            )
        ),
    )
    view = client.full(answer["id"])
    if not _emit(view, as_json):
        print_journey(view)


@queue_app.command("list")
def queue_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Quarantined and held submissions, oldest first."""
    with _sessions()() as session:
        items = [asdict(item) for item in review_queue(session)]
    if _emit(items, as_json):
        return
    if not items:
        typer.echo("the review queue is empty")
    for item in items:
        typer.echo(f"{item['submission_id']}  {item['status']:<11} {item['reason_code'] or '':<32} {item['hotkey']}")


@queue_app.command("resolve")
def queue_resolve(
    submission_id: str,
    release: bool = typer.Option(False, "--release", help="Let it continue from where it stopped."),
    reject: bool = typer.Option(False, "--reject", help="Reject it for good."),
    reason: str = typer.Option(..., help="Why (kept in the audit log)."),
    operator: str = typer.Option("cli", help="Who is deciding."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Release or reject one quarantined or held submission, with a reason (audited)."""
    if release == reject:
        raise typer.BadParameter("choose exactly one of --release or --reject")
    with _sessions()() as session:
        try:
            submission = resolve(
                session,
                submission_id,
                action="release" if release else "reject",
                reason=reason,
                actor=f"operator:{operator}",
            )
        except NotResolvable as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        session.commit()
        result = {"id": submission.id, "status": submission.status}
    if not _emit(result, as_json):
        typer.echo(f"{result['id']} is now {result['status']}")


@config_app.command("show")
def config_show() -> None:
    """Print the active runtime config (the defaults when no row is active) as JSON."""
    with _sessions()() as session:
        try:
            active = load_runtime_config(session)
        except ConfigError as exc:
            typer.echo(f"the active runtime config is invalid (official runs fail closed): {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(json.dumps({"version": active.version, "config": active.config.model_dump(mode="json")}, indent=2))


@config_app.command("set")
def config_set(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A JSON or YAML document."),
    comment: str | None = typer.Option(None, help="Why it changed."),
    operator: str = typer.Option("cli", help="Who is changing it."),
) -> None:
    """Validate a runtime-config document and make it the active version."""
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        typer.echo(f"{file} is not valid JSON or YAML: {exc}", err=True)
        raise typer.Exit(2) from exc
    with _sessions()() as session:
        try:
            version = set_runtime_config(session, document or {}, actor=f"operator:{operator}", comment=comment)
        except ConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        session.commit()
    typer.echo(f"runtime config version {version} is active")
