"""What each console page shows, read from the store into frozen values the templates render.

Other stages' record formats evolve independently, so every record is read defensively: a field
of an unexpected type is skipped, never trusted, and the raw record is always shown as JSON too.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prism.api.console_render import (
    Diagram,
    Excerpt,
    FileDiff,
    diff_projects,
    excerpt,
    mermaid_diagrams,
    numbers,
)
from prism.config import Settings
from prism.errors import PrismError
from prism.sandbox import heldout_backend
from prism.store.base import utcnow
from prism.store.models import AuditEvent, Evaluation, StageResult, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.submissions import counts_by_status, load_project, oldest_pending_created_at, stage_results

DUPLICATE_STAGES = ("source_duplicates", "graph_duplicates")
PAGE_SIZE = 100


# -- overview ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SandboxHealth:
    backend: str
    healthy: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Overview:
    counts: Mapping[str, int]
    queue_depth: int
    review_queue: int
    oldest_pending_at: datetime | None
    oldest_pending_age_s: float | None
    finished_last_hour: Mapping[str, int]
    submitted_last_hour: int
    sandbox: SandboxHealth


def sandbox_health(settings: Settings) -> SandboxHealth:
    """Cheap checks only: is the configured backend's tool present and configured. Never runs a job.

    Where the held-out phase has a backend of its own (`PRISM_HELDOUT_SANDBOX`), that one is
    checked too: without it no submission can be scored."""
    main = _backend_health(settings, settings.sandbox_backend)
    local = heldout_backend(settings)
    if local is None:
        return main
    held = _backend_health(settings, local)
    return SandboxHealth(
        f"{main.backend} (held-out: {local})",
        main.healthy and held.healthy,
        f"{main.detail}; held-out sandbox ({local}, PRISM_HELDOUT_SANDBOX={settings.heldout_sandbox}): {held.detail}",
    )


def _backend_health(settings: Settings, backend: str) -> SandboxHealth:
    if backend == "bubblewrap":
        from prism.sandbox.bubblewrap import BubblewrapSandbox

        try:
            bwrap, layout = BubblewrapSandbox(settings).preflight()
        except PrismError as exc:
            return SandboxHealth(backend, False, str(exc))
        return SandboxHealth(backend, True, f"{bwrap} present; cgroup v{layout.version}")
    if backend == "docker":
        found = shutil.which(settings.docker_binary)
        return SandboxHealth(
            backend,
            found is not None,
            f"{found} present; image {settings.docker_image}"
            if found
            else f"{settings.docker_binary} is not installed",
        )
    if not settings.broker_url:
        return SandboxHealth(backend, False, "PRISM_BROKER_URL is not set")
    if not settings.broker_token:
        return SandboxHealth(backend, False, "the broker token is not configured")
    return SandboxHealth(backend, True, "broker URL and token configured (not probed)")


def overview(session: Session, settings: Settings) -> Overview:
    now = utcnow()
    counts = counts_by_status(session)
    oldest = oldest_pending_created_at(session)
    hour_ago = now - timedelta(hours=1)
    done = (S.COMPLETED.value, S.FAILED.value, S.REJECTED.value)
    finished = dict.fromkeys(done, 0)
    finished.update(
        {
            status: int(n)
            for status, n in session.execute(
                select(Submission.status, func.count())
                .where(Submission.finished_at >= hour_ago, Submission.status.in_(done))
                .group_by(Submission.status)
            )
        }
    )
    submitted = session.scalar(select(func.count()).select_from(Submission).where(Submission.created_at >= hour_ago))
    return Overview(
        counts=counts,
        queue_depth=counts.get(S.PENDING.value, 0),
        review_queue=counts.get(S.QUARANTINED.value, 0) + counts.get(S.HELD.value, 0),
        oldest_pending_at=oldest,
        oldest_pending_age_s=(now - oldest).total_seconds() if oldest else None,
        finished_last_hour=finished,
        submitted_last_hour=int(submitted or 0),
        sandbox=sandbox_health(settings),
    )


def list_submissions(session: Session, *, state: str | None, hotkey: str | None, page: int) -> list[Submission]:
    query = select(Submission).order_by(Submission.created_at.desc(), Submission.id)
    if state:
        query = query.where(Submission.status == state)
    if hotkey:
        query = query.where(Submission.hotkey == hotkey)
    return list(session.scalars(query.offset(page * PAGE_SIZE).limit(PAGE_SIZE)))


# -- one submission ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str  # "audit" | "stage"
    title: str
    outcome: str
    actor: str
    text: str
    from_status: str | None = None
    to_status: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    stage: str
    rule_id: str
    path: str
    line: int
    column: int
    snippet_sha256: str
    explanation: str
    excerpt: Excerpt
    verified: bool = True
    quote: str = ""
    problem: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    submission_id: str
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DuplicateReport:
    stage: str
    outcome: str
    detail: str
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class StageRecord:
    stage: str
    outcome: str
    detail: str
    started_at: datetime
    finished_at: datetime
    data: Mapping[str, Any]
    evidence: Sequence[Any]


@dataclass(frozen=True, slots=True)
class Detail:
    submission: Submission
    evaluation: Evaluation | None
    timeline: tuple[TimelineEntry, ...]
    findings: tuple[Finding, ...]
    diagrams: tuple[Diagram, ...]
    duplicates: tuple[DuplicateReport, ...]
    top_diff: tuple[str, tuple[FileDiff, ...]] | None
    manifest: Mapping[str, Any] | None
    loss_curve: tuple[float, ...]
    stages: tuple[StageRecord, ...]
    files: tuple[str, ...] = field(default=())


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _evidence_findings(stage: str, items: Any, files: Mapping[str, str]) -> list[Finding]:
    found: list[Finding] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        path, line, column = _str(item.get("path")), _int(item.get("line")), _int(item.get("column"))
        sha = _str(item.get("snippet_sha256"))
        found.append(
            Finding(
                stage,
                _str(item.get("rule_id")),
                path,
                line,
                column,
                sha,
                _str(item.get("explanation")),
                excerpt(files, path, line, column=column, sha256=sha),
            )
        )
    return found


def _claim_findings(stage: str, data: Mapping[str, Any], files: Mapping[str, str]) -> list[Finding]:
    """The LLM's rejection claims PRISM could not verify: shown for the operator, marked as such."""
    found: list[Finding] = []
    claims = data.get("unverified_claims")
    for item in claims if isinstance(claims, list) else []:
        if not isinstance(item, Mapping):
            continue
        path, start = _str(item.get("path")), _int(item.get("line_start"))
        end = _int(item.get("line_end"), start)
        found.append(
            Finding(
                stage,
                _str(item.get("rule_id")),
                path,
                start,
                0,
                "",
                _str(item.get("explanation")),
                excerpt(files, path, start, end_line=end),
                verified=False,
                quote=_str(item.get("quote")),
                problem=_str(item.get("problem")),
            )
        )
    return found


def _timeline(events: Sequence[AuditEvent], stages: Sequence[StageResult]) -> list[TimelineEntry]:
    entries = [
        TimelineEntry(
            e.at,
            "audit",
            e.action,
            e.to_status or "",
            e.actor,
            " — ".join(p for p in (e.reason_code or "", e.reason or "") if p),
            e.from_status,
            e.to_status,
        )
        for e in events
    ]
    entries.extend(TimelineEntry(s.finished_at, "stage", s.stage, s.outcome, "worker", s.detail or "") for s in stages)
    return sorted(entries, key=lambda e: (e.at, e.kind != "stage"))


def _duplicates(row: StageResult) -> DuplicateReport:
    data = row.data if isinstance(row.data, Mapping) else {}
    raw = data.get("candidates")
    candidates = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("submission_id"), str):
            scalars = tuple(
                (str(k), f"{v:.3f}" if isinstance(v, float) else str(v))
                for k, v in sorted(item.items())
                if k != "submission_id" and isinstance(v, str | int | float | bool)
            )
            candidates.append(Candidate(item["submission_id"], scalars))
    return DuplicateReport(row.stage, row.outcome, row.detail or "", tuple(candidates))


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def loss_curve(records: Mapping[str, Mapping[str, Any]], evaluation: Evaluation | None) -> list[float]:
    """The training loss per step, wherever the evaluation put it (a list, or a curve document)."""
    train = records.get("train", {})
    manifest = _mapping(records.get("validation", {}).get("manifest")) or (evaluation.manifest if evaluation else {})
    metrics = (_mapping(manifest.get("metrics")) or {}) if manifest else {}
    for candidate in (
        train.get("loss_curve"),
        (_mapping(train.get("metrics")) or {}).get("loss_curve"),
        metrics.get("loss_curve"),
        (manifest or {}).get("loss_curve"),
    ):
        if isinstance(candidate, Mapping):
            candidate = candidate.get("losses_nats", candidate.get("losses", candidate.get("values")))
        values = numbers(candidate)
        if len(values) >= 2:
            return values
    return []


def submission_detail(session: Session, submission: Submission) -> Detail:
    files = load_project(session, submission.id)
    rows = stage_results(session, submission.id)
    events = list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.submission_id == submission.id).order_by(AuditEvent.at, AuditEvent.id)
        )
    )
    records = {row.stage: row.data if isinstance(row.data, Mapping) else {} for row in rows}
    findings: list[Finding] = []
    diagrams: list[Diagram] = []
    duplicates: list[DuplicateReport] = []
    for row in rows:
        data = records[row.stage]
        findings.extend(_evidence_findings(row.stage, row.evidence, files))
        findings.extend(_claim_findings(row.stage, data, files))
        diagrams.extend(mermaid_diagrams(row.stage, data))
        if row.stage in DUPLICATE_STAGES:
            duplicates.append(_duplicates(row))
    top_diff = None
    for report in duplicates:
        if report.candidates:
            other = report.candidates[0].submission_id
            top_diff = (other, tuple(diff_projects(load_project(session, other), files)))
            break
    evaluation = session.get(Evaluation, submission.id)
    manifest = _mapping(records.get("validation", {}).get("manifest")) or (evaluation.manifest if evaluation else None)
    return Detail(
        submission=submission,
        evaluation=evaluation,
        timeline=tuple(_timeline(events, rows)),
        findings=tuple(findings),
        diagrams=tuple(diagrams),
        duplicates=tuple(duplicates),
        top_diff=top_diff,
        manifest=manifest,
        loss_curve=tuple(loss_curve(records, evaluation)),
        stages=tuple(
            StageRecord(
                r.stage,
                r.outcome,
                r.detail or "",
                r.started_at,
                r.finished_at,
                records[r.stage],
                r.evidence if isinstance(r.evidence, list) else [],
            )
            for r in rows
        ),
        files=tuple(sorted(files)),
    )
