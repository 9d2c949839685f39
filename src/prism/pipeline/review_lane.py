"""The review lane: review verdicts never wait behind a training run.

One worker runs a submission's stages in order, so with one worker busy training for minutes, a
syntax error submitted meanwhile sat in the queue for those minutes before static review said
no. The lane is a second loop, beside the worker, that takes only *unreviewed* pending
submissions and runs only the review stages (static review, source duplicates, LLM review),
which are quick, need no sandbox and no GPU:

- a rejection, quarantine or hold is final for the lane (stored like any worker's decision);
- a submission that passes review goes back to `pending`, in its place in the queue, and the
  evaluation worker resumes it after the last finished stage (its review results are stored).

It claims with its own query (pending, due, no finished `llm_review`) under the same lease and
fencing as the worker, and reuses the worker's step running and persistence, so every decision
is written exactly as the worker would write it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import exists, or_, select

from prism.pipeline.queue import Claim, LeaseLost, _locked, fenced, requeue_expired, write_transaction
from prism.pipeline.stages import STAGES
from prism.pipeline.worker import DONE, Worker, _Heartbeat
from prism.store.base import utcnow
from prism.store.lifecycle import transition
from prism.store.models import StageResult, Submission
from prism.store.models import SubmissionStatus as S

log = logging.getLogger(__name__)

REVIEW_STAGES = ("static_review", "source_duplicates", "llm_review")
_LAST = REVIEW_STAGES[-1]


def claim_unreviewed(worker: Worker) -> Claim | None:
    """The oldest due pending submission whose review has not finished, under a fresh lease."""
    now = utcnow()
    reviewed = exists().where(
        StageResult.submission_id == Submission.id, StageResult.stage == _LAST, StageResult.outcome.in_(DONE)
    )
    with write_transaction(worker.sessions) as session:
        requeue_expired(session, now)
        submission = session.scalars(
            _locked(
                session,
                select(Submission)
                .where(
                    Submission.status == S.PENDING.value,
                    or_(Submission.next_attempt_at.is_(None), Submission.next_attempt_at <= now),
                    ~reviewed,
                )
                .order_by(Submission.created_at, Submission.id)
                .limit(1),
            )
        ).first()
        if submission is None:
            return None
        transition(session, submission, S.RUNNING, actor=f"worker:{worker.worker_id}", reason_code="review_lane")
        submission.lease_owner = worker.worker_id
        submission.lease_expires_at = now + timedelta(seconds=worker.settings.worker_lease_seconds)
        return Claim(submission.id, worker.worker_id)


@dataclass
class ReviewLane(Worker):
    """A `Worker` that claims unreviewed submissions and runs only the review stages."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.worker_id.startswith("review-"):
            self.worker_id = f"review-{self.worker_id}"

    def run_once(self) -> str | None:
        claim = claim_unreviewed(self)
        if claim is None:
            return None
        log.info(
            "review lane claimed submission", extra={"submission_id": claim.submission_id, "worker": self.worker_id}
        )
        with _Heartbeat(self, claim):
            try:
                self._review(claim)
            except LeaseLost:
                log.warning("review lane lost its lease", extra={"submission_id": claim.submission_id})
        return claim.submission_id

    def _review(self, claim: Claim) -> None:
        context = self._context(claim)  # an intake rejection is recorded there, as by the worker
        if context is None:
            return
        done = self._done_stages(claim.submission_id)
        for stage, step in STAGES:
            if stage not in REVIEW_STAGES or stage in done:
                continue
            started = utcnow()
            outcome = self._attempt(claim, stage, step, context)
            if outcome is None or not self._persist(claim, stage, outcome, started):
                return  # an infrastructure retry or a verdict: recorded, the lane is done with it
            context.records[stage] = outcome.record
        with fenced(self.sessions, claim) as (session, submission):
            submission.lease_owner = None
            submission.lease_expires_at = None
            transition(
                session,
                submission,
                S.PENDING,
                actor=f"worker:{self.worker_id}",
                reason_code="review.passed",
                reason="review passed; waiting for evaluation",
            )
