"""`prism review PATH [--json]`: intake and static review of a .zip, a .py or a directory.

Exit status: 0 accepted, 3 rejected (hostile or unsupported archives included), 2 usage error.
The command never imports or runs the reviewed code.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from prism.cli import app
from prism.config import get_settings
from prism.evidence import Evidence
from prism.intake.archive import read_project
from prism.intake.directory import read_directory
from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.review.static import StaticPolicy, review_project

EXIT_ACCEPT = 0
EXIT_USAGE = 2
EXIT_REJECT = 3


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    accepted: bool
    findings: tuple[Evidence, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_ACCEPT if self.accepted else EXIT_REJECT

    def to_json(self) -> str:
        keys = ("rule_id", "path", "line", "snippet_sha256", "explanation")
        items = [{key: getattr(f, key) for key in keys} for f in self.findings]
        return json.dumps({"decision": "accept" if self.accepted else "reject", "findings": items}, indent=2)

    def to_text(self) -> str:
        lines = ["decision: " + ("accept" if self.accepted else "reject")]
        for f in self.findings:
            where = f"{f.path}:{f.line}" if f.path else "(upload)"
            lines.append(f"  {f.rule_id}  {where}  {f.explanation}")
        return "\n".join(lines)


class UsageError(Exception):
    """PATH does not name something the command can review."""


def review_path(path: Path, *, limits: IntakeLimits, policy: StaticPolicy) -> ReviewOutcome:
    """Intake then static review; an intake rejection is a rejection, never a crash."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if stat.S_ISDIR(info.st_mode):
            project = read_directory(path, limits=limits)
        elif stat.S_ISREG(info.st_mode):
            if info.st_size > limits.max_archive_bytes:
                raise IntakeRejected(
                    "archive.too_large",
                    (Evidence.at("archive.too_large", "", 0, f"{info.st_size} bytes, over max_archive_bytes"),),
                )
            project = read_project(path.read_bytes(), path.name, limits=limits)
        else:
            raise UsageError(f"{path} is neither a file nor a directory")
    except IntakeRejected as exc:
        return ReviewOutcome(accepted=False, findings=exc.evidence)
    report = review_project(project, policy=policy)
    return ReviewOutcome(accepted=report.accepted, findings=report.findings)


@app.command("review")
def review(
    path: Annotated[Path, typer.Argument(help="A .zip, a .py or a project directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Review a submission statically: print the decision and every finding."""
    settings = get_settings()
    try:
        outcome = review_path(
            path, limits=IntakeLimits.from_settings(settings), policy=StaticPolicy.from_settings(settings)
        )
    except UsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    typer.echo(outcome.to_json() if as_json else outcome.to_text())
    raise typer.Exit(outcome.exit_code)
