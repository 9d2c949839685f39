"""`prism evaluate PATH`: review, then inspect, train and heldout in the configured sandbox, then validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prism.cli import app
from prism.config import Settings, get_settings
from prism.errors import PrismError
from prism.evaluation.evaluate import evaluate_project
from prism.evaluation.jobs import MODES, Mode
from prism.evaluation.progress import ProgressPoint
from prism.intake.project import Project
from prism.runtime_config import DEFAULT_RUNTIME_CONFIG, RuntimeConfig
from prism.sandbox import get_heldout_sandbox, get_sandbox


def _runtime_config(settings: Settings) -> RuntimeConfig:
    """The active SQL runtime config where a database exists; the defaults otherwise.

    An invalid active row raises `ConfigError`: official runs fail closed, never on defaults.
    """
    if settings.database_url is None and not (settings.data_dir / "prism.db").exists():
        return DEFAULT_RUNTIME_CONFIG
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from prism.store.db import make_engine, make_session_factory
    from prism.store.runtime_configs import load_runtime_config

    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            return load_runtime_config(session).config
    except (OperationalError, ProgrammingError):  # no tables yet: nothing configured
        return DEFAULT_RUNTIME_CONFIG
    finally:
        engine.dispose()


def _read(path: Path) -> Project:
    from prism.intake.limits import IntakeLimits

    limits = IntakeLimits.from_settings(get_settings())
    if path.is_dir():
        from prism.intake.directory import read_directory

        return read_directory(path, limits=limits)
    from prism.intake.archive import read_project

    return read_project(path.read_bytes(), path.name, limits=limits)


@app.command("evaluate")
def evaluate(
    path: Annotated[Path, typer.Argument(help="a project directory, a ZIP, or a single .py file")],
    mode: Annotated[str, typer.Option(help="local_cpu_smoke (never scored) or official")] = "local_cpu_smoke",
    as_json: Annotated[
        bool, typer.Option("--json", help="print the decision, manifest and validation as JSON")
    ] = False,
    unreviewed: Annotated[
        bool,
        typer.Option(
            "--unreviewed",
            help="skip static and LLM review to show the walls hold on their own (never official, never scored)",
        ),
    ] = False,
) -> None:
    """Evaluate a project end to end; exit 0 only when the run is accepted."""
    if mode not in MODES:
        raise typer.BadParameter(f"mode must be one of {', '.join(MODES)}")
    if unreviewed and mode == "official":
        raise typer.BadParameter("--unreviewed runs are never official: they exist to test the walls")
    settings = get_settings()
    try:
        project = _read(path)
        outcome = evaluate_project(
            project,
            settings=settings,
            runtime_config=_runtime_config(settings),
            mode=_mode(mode),
            sandbox=get_sandbox(settings),
            submission_id=f"local-{project.code_hash[:12]}",
            unreviewed=unreviewed,
            heldout_sandbox=get_heldout_sandbox(settings),
            on_progress=None if as_json else _print_progress,
        )
    except PrismError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(outcome.to_json(), indent=2, sort_keys=True))
    else:
        typer.echo(f"decision: {outcome.decision} {outcome.reason_code}".rstrip())
        if unreviewed:
            typer.echo("unreviewed: review skipped; this run is non-scoring")
        metrics = outcome.manifest.get("metrics", {})
        for key in ("bits_per_byte", "heldout_bits_per_byte"):
            if key in metrics:
                typer.echo(f"{key}: {metrics[key]:.4f}")
        for item in outcome.evidence:
            typer.echo(f"  [{item.rule_id}] {item.explanation}")
    raise typer.Exit(0 if outcome.decision == "accepted" else 1)


def _print_progress(point: ProgressPoint) -> None:
    # stderr: stdout carries the decision alone, for scripts.
    typer.echo(
        f"training: step {point.step}/{point.steps}  {point.tokens:,} bytes  "
        f"{point.bits_per_byte:.4f} bits/byte (mean {point.mean_bits_per_byte:.4f})  live, unverified",
        err=True,
    )


def _mode(value: str) -> Mode:
    return "official" if value == "official" else "local_cpu_smoke"
