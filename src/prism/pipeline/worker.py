"""The worker: claim a submission, run its steps in order, persist each decision before the next.

A restart resumes after the last finished step (its record is in `stage_results`). Faults are
sorted once, here:
- the submission broke a rule → `rejected` with evidence (terminal);
- suspicion → `quarantined`; a review that could not finish → `held` (retried with back-off);
- the submitted code crashed or timed out → `failed` (terminal, the miner's fault);
- our infrastructure failed (sandbox could not start, broker busy, data missing, our own bug) →
  back to `pending` with back-off, up to `worker_max_infra_retries`, then `failed` with a reason
  that says it was not the miner's fault. Such retries never count against the miner.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.errors import ConfigError, PrismError
from prism.evaluation.errors import DatasetError, EvaluationRejected, HarnessProtocolError, MinerCodeFailed
from prism.evidence import evidence_to_json
from prism.intake.archive import read_project
from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.pipeline.cleanup import Housekeeping
from prism.pipeline.context import StepContext, StepOutcome, SubmissionInfo
from prism.pipeline.eval_steps import EvaluationRestart
from prism.pipeline.lease_guard import stop_container_jobs, stop_local_jobs
from prism.pipeline.queue import Claim, LeaseLost, claim_next, fenced, reap_expired, release_claim, renew_lease
from prism.pipeline.stages import EVALUATION_STAGES, STAGES, Step
from prism.sandbox import get_heldout_sandbox, get_sandbox
from prism.sandbox.errors import SandboxInfraError, SandboxUnavailable
from prism.sandbox.spec import Sandbox
from prism.store.base import utcnow
from prism.store.db import DatabaseUnavailable, is_transient, retry_transient
from prism.store.lifecycle import audit, transition
from prism.store.models import StageResult, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.runtime_configs import load_runtime_config
from prism.store.submissions import load_archive, record_stage

log = logging.getLogger(__name__)

# Our side failed: retry later, never the miner's fault.
INFRA_ERRORS: tuple[type[PrismError], ...] = (
    SandboxInfraError,
    SandboxUnavailable,
    DatasetError,
    HarnessProtocolError,
    ConfigError,
)
# A step result with one of these outcomes counts as done when resuming.
DONE = frozenset({"passed", "released"})
HOLD_BACKOFF_CAP = timedelta(hours=1)


@dataclass
class Worker:
    settings: Settings
    sessions: sessionmaker[Session]
    sandbox_factory: Callable[[], Sandbox] | None = None
    heldout_sandbox_factory: Callable[[], Sandbox | None] | None = None
    worker_id: str = ""
    housekeeping: Housekeeping | None = None

    def __post_init__(self) -> None:
        self.worker_id = self.worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        if self.sandbox_factory is None:
            settings = self.settings
            self.sandbox_factory = lambda: get_sandbox(settings)
        if self.heldout_sandbox_factory is None:
            self.heldout_sandbox_factory = lambda: get_heldout_sandbox(self.settings)
        if self.housekeeping is None:
            self.housekeeping = Housekeeping(self.settings, self.sessions)

    def run_once(self) -> str | None:
        """Process at most one submission; returns its id, or None when the queue is empty.

        A database that stays unavailable past the retry budget raises `DatabaseUnavailable`
        (the caller backs off); the submission goes back to the queue without spending any of
        its infrastructure retries.
        """
        assert self.housekeeping is not None
        self.housekeeping.maybe_run()
        claim = retry_transient(
            lambda: claim_next(self.sessions, self.worker_id, lease_seconds=self.settings.worker_lease_seconds),
            budget_seconds=self.settings.db_retry_budget_seconds,
            what="claim",
        )
        if claim is None:
            return None
        log.info("claimed submission", extra={"submission_id": claim.submission_id, "worker": self.worker_id})
        with _Heartbeat(self, claim):
            try:
                self._run(claim)
            except LeaseLost:
                log.warning(
                    "lease lost; another worker owns the submission now", extra={"submission_id": claim.submission_id}
                )
            except (DatabaseUnavailable, SQLAlchemyError) as exc:
                if not is_transient(exc):
                    raise
                self._release(claim, exc)
                raise DatabaseUnavailable(f"database unavailable while processing {claim.submission_id}") from exc
        return claim.submission_id

    def _release(self, claim: Claim, exc: BaseException) -> None:
        """Give the submission back at once (its lease would expire anyway); never counts as a retry."""
        log.warning(
            "database unavailable; returning the submission to the queue: %s",
            type(exc).__name__,
            extra={"submission_id": claim.submission_id},
        )
        # If even that fails, the lease runs out and any worker's reaper requeues it.
        with contextlib.suppress(LeaseLost, SQLAlchemyError):
            release_claim(self.sessions, claim, reason=f"database unavailable ({type(exc).__name__})")

    def drain(self) -> int:
        processed = 0
        while self.run_once() is not None:
            processed += 1
        return processed

    # -- one submission ----------------------------------------------------------------------

    def _run(self, claim: Claim) -> None:
        try:
            context = self._context(claim)
        except ConfigError as exc:
            # An invalid runtime config fails closed: nothing runs until an operator fixes it.
            self._infra_fault(claim, "setup", str(exc))
            return
        if context is None:
            return
        done = self._done_stages(claim.submission_id)
        for stage, step in STAGES:
            if stage in done:
                continue
            started = utcnow()
            outcome = self._attempt(claim, stage, step, context)
            if outcome is None:  # an infrastructure fault was recorded; we stop here
                return
            if not self._persist(claim, stage, outcome, started):
                return
            context.records[stage] = outcome.record
            context.outcomes[stage] = outcome.outcome
        with fenced(self.sessions, claim) as (session, submission):
            submission.infra_attempts = 0
            transition(
                session,
                submission,
                S.COMPLETED,
                actor=f"worker:{self.worker_id}",
                reason_code="completed",
                reason=_completion_reason(context),
            )
        shutil.rmtree(context.work_dir, ignore_errors=True)

    def _persist(self, claim: Claim, stage: str, outcome: StepOutcome, started: datetime) -> bool:
        """Write the stage's decision under the lease; False when it stopped the submission."""
        with fenced(self.sessions, claim) as (session, submission):
            previous = session.get(StageResult, (claim.submission_id, stage))
            if outcome.outcome == "passed" and previous is not None and previous.outcome == "held":
                # Holds count their back-off in infra_attempts; once the held stage passes, a
                # provider outage must not have spent the infrastructure-retry budget.
                submission.infra_attempts = 0
            record_stage(
                session,
                claim.submission_id,
                stage,
                outcome.outcome,
                detail=outcome.detail,
                data=dict(outcome.record),
                evidence=outcome.evidence,
                started_at=started,
            )
            submission.stage = stage
            if outcome.architecture_hash:
                submission.architecture_hash = outcome.architecture_hash
            if outcome.outcome != "passed":
                self._stop(session, submission, stage, outcome)
                return False
            if outcome.evidence:
                # Passed, but with something to note (an advisory review that failed, a variant
                # attached to another's family): the audit log says so.
                audit(
                    session,
                    submission_id=claim.submission_id,
                    actor=f"worker:{self.worker_id}",
                    action="stage.passed_with_evidence",
                    reason_code=outcome.reason_code,
                    reason=outcome.detail,
                    data={"stage": stage, "evidence": evidence_to_json(outcome.evidence)},
                )
        return True

    def _attempt(self, claim: Claim, stage: str, step: Step, context: StepContext) -> StepOutcome | None:
        try:
            return step(context)
        except EvaluationRejected as exc:
            return StepOutcome("rejected", exc.reason_code, str(exc), {}, exc.evidence)
        except MinerCodeFailed as exc:
            return StepOutcome("failed", exc.reason_code, exc.detail)
        except EvaluationRestart as exc:
            with fenced(self.sessions, claim) as (session, _submission):
                session.execute(
                    delete(StageResult).where(
                        StageResult.submission_id == claim.submission_id, StageResult.stage.in_(EVALUATION_STAGES)
                    )
                )
            self._infra_fault(claim, stage, str(exc))
            return None
        except INFRA_ERRORS as exc:
            self._infra_fault(claim, stage, f"{type(exc).__name__}: {exc}")
            return None
        except (LeaseLost, DatabaseUnavailable):
            raise
        except SQLAlchemyError as exc:
            if is_transient(exc):
                # The database, not the submission: never spend its retry budget on this.
                raise DatabaseUnavailable(f"database unavailable in {stage}") from exc
            log.exception("step %s failed in the database", stage, extra={"submission_id": claim.submission_id})
            self._infra_fault(claim, stage, f"internal error in {stage}: {type(exc).__name__}")
            return None
        except Exception as exc:
            # A bug of ours: loud in the log, retried like any fault of ours, never blamed on the miner.
            log.exception("step %s crashed", stage, extra={"submission_id": claim.submission_id})
            self._infra_fault(claim, stage, f"internal error in {stage}: {type(exc).__name__}")
            return None

    def _stop(self, session: Session, submission: Submission, stage: str, outcome: StepOutcome) -> None:
        target = {"rejected": S.REJECTED, "quarantined": S.QUARANTINED, "held": S.HELD, "failed": S.FAILED}[
            outcome.outcome
        ]
        if target is S.HELD:
            # Retried automatically; a long outage only stretches the back-off, it never rejects.
            delay = min(
                self.settings.worker_retry_base_seconds * 2 ** min(submission.infra_attempts, 16),
                HOLD_BACKOFF_CAP.total_seconds(),
            )
            submission.infra_attempts += 1
            submission.next_attempt_at = utcnow() + timedelta(seconds=delay)
        transition(
            session,
            submission,
            target,
            actor=f"worker:{self.worker_id}",
            reason_code=outcome.reason_code or f"{stage}.{outcome.outcome}",
            reason=outcome.detail,
            evidence=outcome.evidence,
            data={"stage": stage},
        )

    def _infra_fault(self, claim: Claim, stage: str, detail: str) -> None:
        with fenced(self.sessions, claim) as (session, submission):
            submission.infra_attempts += 1
            if submission.infra_attempts > self.settings.worker_max_infra_retries:
                transition(
                    session,
                    submission,
                    S.FAILED,
                    actor=f"worker:{self.worker_id}",
                    reason_code="infrastructure",
                    data={"stage": stage},
                    reason=f"PRISM could not evaluate this submission (not the miner's fault): {detail}",
                )
                return
            delay = self.settings.worker_retry_base_seconds * 2 ** (submission.infra_attempts - 1)
            submission.next_attempt_at = utcnow() + timedelta(seconds=delay)
            transition(
                session,
                submission,
                S.PENDING,
                actor=f"worker:{self.worker_id}",
                reason_code="infrastructure_retry",
                reason=detail,
                data={"stage": stage, "attempt": submission.infra_attempts, "retry_in_seconds": delay},
            )
        log.warning(
            "infrastructure fault in %s, will retry: %s", stage, detail, extra={"submission_id": claim.submission_id}
        )

    def _context(self, claim: Claim) -> StepContext | None:
        return retry_transient(
            lambda: self._load_context(claim), budget_seconds=self.settings.db_retry_budget_seconds, what="load"
        )

    def _load_context(self, claim: Claim) -> StepContext | None:
        with self.sessions() as session:
            submission = session.get(Submission, claim.submission_id)
            archive = load_archive(session, claim.submission_id)
            active = load_runtime_config(session)
            assert submission is not None and archive is not None
            info = SubmissionInfo(
                submission.id,
                submission.hotkey,
                submission.code_hash,
                submission.filename,
                submission.created_at,
                submission.infra_attempts,
            )
            rows = session.scalars(select(StageResult).where(StageResult.submission_id == claim.submission_id)).all()
            records: dict[str, Mapping[str, Any]] = {row.stage: row.data for row in rows}
            outcomes = {row.stage: row.outcome for row in rows}
        try:
            project = read_project(archive, info.filename, limits=IntakeLimits.from_settings(self.settings))
        except IntakeRejected as exc:
            # Intake limits may have tightened since the bridge accepted it.
            with fenced(self.sessions, claim) as (session, submission_row):
                record_stage(session, claim.submission_id, "intake", "rejected", detail=str(exc), evidence=exc.evidence)
                transition(
                    session,
                    submission_row,
                    S.REJECTED,
                    actor=f"worker:{self.worker_id}",
                    reason_code=exc.reason_code,
                    reason=str(exc),
                    evidence=exc.evidence,
                )
            return None
        assert self.sandbox_factory is not None and self.heldout_sandbox_factory is not None
        return StepContext(
            settings=self.settings,
            runtime_config=active.config,
            runtime_config_version=active.version,
            sessions=self.sessions,
            submission=info,
            project=project,
            work_dir=Path(self.settings.data_dir) / "work" / info.id,
            sandbox_factory=self.sandbox_factory,
            heldout_sandbox_factory=self.heldout_sandbox_factory,
            records=records,
            outcomes=outcomes,
        )

    def _done_stages(self, submission_id: str) -> set[str]:
        with self.sessions() as session:
            rows = session.scalars(select(StageResult).where(StageResult.submission_id == submission_id))
            return {row.stage for row in rows if row.outcome in DONE}


def _completion_reason(context: StepContext) -> str:
    validation = context.records.get("validation", {})
    mode = validation.get("mode", "unknown")
    eligible = validation.get("score_eligible", False)
    kind = "score-eligible official run" if eligible else "non-scoring run (no weight, no leaderboard)"
    return f"evaluated in mode {mode}: {kind}"


class _Heartbeat:
    """Renews the lease while the steps run, so a long evaluation is never taken away."""

    def __init__(self, worker: Worker, claim: Claim) -> None:
        self.worker = worker
        self.claim = claim
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{claim.submission_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def _beat(self) -> None:
        settings = self.worker.settings
        while not self.stopped.wait(settings.worker_heartbeat_seconds):
            try:
                if not renew_lease(self.worker.sessions, self.claim, lease_seconds=settings.worker_lease_seconds):
                    # Another worker may run this submission now: our sandbox job stops at once,
                    # and the fenced writes after it refuse (LeaseLost).
                    stop_local_jobs(self.claim.submission_id)
                    stop_container_jobs(settings, self.claim.submission_id)
                    return
                # A busy worker reaps too, so a dead worker's submission never waits for an idle one.
                reap_expired(self.worker.sessions)
            except (SQLAlchemyError, PrismError, OSError) as exc:
                # The beat goes on: a database that is back renews the lease before it expires.
                log.warning(
                    "heartbeat failed: %s", type(exc).__name__, extra={"submission_id": self.claim.submission_id}
                )
