"""`prism sandbox check` and `prism sandbox run`: the operator's view of the isolation layer."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from prism.cli import app
from prism.config import get_settings
from prism.sandbox import get_heldout_sandbox, get_sandbox
from prism.sandbox.archives import write_files
from prism.sandbox.errors import SandboxError
from prism.sandbox.launcher import iter_regular_files
from prism.sandbox.selftest import run_checks
from prism.sandbox.selftest_walls import run_wall_checks
from prism.sandbox.sizes import parse_size
from prism.sandbox.spec import SUBMISSION_MOUNT, Limits, Mount, RunSpec

sandbox_app = typer.Typer(no_args_is_help=True, help="Check and use the execution sandbox.")
app.add_typer(sandbox_app, name="sandbox")

_MAX_PROJECT_BYTES = 256 * 1024**2


@sandbox_app.command("check")
def check() -> None:
    """Run hostile payloads through the configured backend; non-zero exit if any is not contained.

    The last four rows are the walls inside the sandbox: the model's Landlock domain and seccomp
    allowlist, pid 1 and the recorder out of its reach, and the MAC'd report. Where the held-out
    phase has a sandbox of its own (PRISM_HELDOUT_SANDBOX; on Platform, bubblewrap on this host),
    it is checked the same way after the main backend."""
    settings = get_settings()
    passed = True
    for role in ("main", "held-out"):
        try:
            sandbox = get_sandbox(settings) if role == "main" else get_heldout_sandbox(settings)
            if sandbox is None:
                break
            results = run_checks(sandbox, settings) + run_wall_checks(sandbox)
        except SandboxError as exc:
            setting = "" if role == "main" else f" (PRISM_HELDOUT_SANDBOX={settings.heldout_sandbox})"
            typer.echo(f"FAIL  {role} sandbox unavailable{setting}: {exc}", err=True)
            raise typer.Exit(2) from exc
        width = max(len(r.name) for r in results)
        typer.echo(f"backend: {sandbox.name}" if role == "main" else f"held-out backend: {sandbox.name}")
        for result in results:
            typer.echo(f"{'PASS' if result.passed else 'FAIL'}  {result.name:<{width}}  {result.detail}")
        passed = passed and all(r.passed for r in results)
    if not passed:
        raise typer.Exit(1)


def _copy_project(source: Path, dest: Path) -> None:
    """A clean, world-readable copy: regular files only, no links, no bytecode caches."""
    import os

    files: dict[str, bytes] = {}
    total = 0
    root = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for rel, fd in iter_regular_files(root):
            if fd is None:
                continue
            with os.fdopen(fd, "rb") as handle:
                if "__pycache__" in rel.split("/") or rel.endswith((".pyc", ".pyo")):
                    continue
                data = handle.read(_MAX_PROJECT_BYTES + 1)
            total += len(data)
            if total > _MAX_PROJECT_BYTES:
                raise typer.BadParameter(f"project is larger than {_MAX_PROJECT_BYTES} bytes", param_hint="--project")
            files[rel] = data
    finally:
        os.close(root)
    write_files(dest, files)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@sandbox_app.command("run", context_settings={"allow_interspersed_args": False})
def run(
    command: Annotated[list[str], typer.Argument(help="the command to run inside, after --")],
    project: Annotated[Path, typer.Option("--project", exists=True, file_okay=False, help="mounted at /submission")],
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="wall-clock seconds")] = 600.0,
    memory: Annotated[str | None, typer.Option("--memory", help="memory limit, e.g. 4g (no swap)")] = None,
    pids: Annotated[int | None, typer.Option("--pids", min=1, help="process limit")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the RunResult as JSON")] = False,
) -> None:
    """Run CMD with DIR read-only at /submission, a fresh /artifacts and the default evaluation limits."""
    settings = get_settings()
    defaults = Limits()
    try:
        memory_bytes = parse_size(memory) if memory else defaults.memory_bytes
        limits = Limits(
            timeout_seconds=timeout,
            memory_bytes=memory_bytes,
            memory_swap_bytes=memory_bytes,
            pids=pids or defaults.pids,
        )
        work = Path(tempfile.mkdtemp(prefix="prism-run-"))
        try:
            work.chmod(0o755)
            (work / "project").mkdir(mode=0o755)
            (work / "artifacts").mkdir()
            _copy_project(project, work / "project")
            spec = RunSpec(
                command=tuple(command),
                mounts=(Mount(work / "project", SUBMISSION_MOUNT),),
                artifacts_dir=work / "artifacts",
                limits=limits,
                workdir=SUBMISSION_MOUNT,
            )
            result = get_sandbox(settings).run(spec)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except SandboxError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        typer.echo(result.stdout, nl=False)
        typer.echo(result.stderr, nl=False, err=True)
        if result.timed_out:
            typer.echo(f"[timed out after {result.duration_seconds:.1f}s]", err=True)
        if result.oom_killed:
            typer.echo("[killed: out of memory]", err=True)
    raise typer.Exit(0 if result.ok else (result.exit_code or 1))
