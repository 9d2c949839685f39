"""Review steps: static policy, source duplicates, LLM policy review, claims review.

Each is a function of the step context that returns a `StepOutcome`; the worker persists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace

from sqlalchemy.orm import Session

from prism.evidence import evidence_to_json
from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.intake.project import Project
from prism.intake.project_yaml import parse_project_config
from prism.pipeline.context import Outcome, StepContext, StepOutcome
from prism.reasons import qualify
from prism.review.llm import Finding, LlmReviewConfig, LlmReviewResult, ReviewContext, SimilarSource, review_project
from prism.review.similarity import fingerprint_project
from prism.review.similarity.duplicates import DuplicateReport, decide_source
from prism.review.similarity.errors import FingerprintError
from prism.review.static import StaticPolicy
from prism.review.static import review_project as static_review
from prism.scoring.claims import REASON_CODE as CLAIMS_REASON
from prism.scoring.claims import review_claims
from prism.store.db import run_write
from prism.store.fingerprints import (
    find_candidates,
    save_fingerprint,
    save_fingerprint_once,
    save_report,
    unfingerprinted_priors,
)
from prism.store.submissions import load_project

DUPLICATE_OUTCOMES: dict[str, Outcome] = {
    "reject": "rejected",
    "quarantine": "quarantined",
    "attach": "passed",
    "allow": "passed",
}


def static_review_step(ctx: StepContext) -> StepOutcome:
    report = static_review(ctx.project, policy=StaticPolicy.from_settings(ctx.settings))
    if report.accepted:
        reviewed = len(ctx.project.python_files)
        return StepOutcome.passed(f"{reviewed} Python file(s) reviewed, no findings", files_reviewed=reviewed)
    rules = sorted({item.rule_id for item in report.findings})
    return StepOutcome(
        "rejected",
        reason_code=qualify("static", rules[0]) if len(rules) == 1 else "static.policy_violation",
        detail=f"static review found {len(report.findings)} violation(s): {', '.join(rules)}",
        evidence=report.findings,
        record={"rules": rules},
    )


def _prior_project(files: Mapping[str, str]) -> Project | None:
    """An earlier submission's stored snapshot as a project (None if it no longer passes intake)."""
    try:
        config = parse_project_config(files["prism.yaml"], limits=IntakeLimits()) if "prism.yaml" in files else None
    except IntakeRejected:
        return None
    return Project(files, config) if config else Project(files)


def _backfill_priors(session: Session, ctx: StepContext) -> None:
    """Fingerprint earlier submissions that no worker has reached yet.

    Workers claim in order, so this is almost always nothing; but with several workers a copy
    can reach its source check before its original's, and must still find it.
    """
    for prior_id in unfingerprinted_priors(session, before=ctx.submission.created_at):
        project = _prior_project(load_project(session, prior_id))
        fingerprint = None  # a tombstone: unparsable code is no one's prior art, and is not retried
        if project is not None:
            with suppress(FingerprintError):
                fingerprint = fingerprint_project(project)
        save_fingerprint_once(session, prior_id, fingerprint)


def source_duplicates_step(ctx: StepContext) -> StepOutcome:
    fingerprint = fingerprint_project(ctx.project)

    def decide(session: Session) -> DuplicateReport:
        _backfill_priors(session, ctx)
        save_fingerprint(session, ctx.submission.id, fingerprint)
        policy = ctx.runtime_config.similarity
        candidates = find_candidates(
            session,
            fingerprint,
            submission_id=ctx.submission.id,
            created_at=ctx.submission.created_at,
            limit=policy.candidate_limit,
        )
        decided = decide_source(fingerprint, hotkey=ctx.submission.hotkey, candidates=candidates, policy=policy)
        save_report(session, ctx.submission.id, decided)
        return decided

    # Reads then writes: the write lock is taken up front and a busy lock is waited out here.
    report = run_write(ctx.sessions, decide, budget_seconds=ctx.settings.db_retry_budget_seconds, what="source check")
    record = report.to_json()
    outcome = DUPLICATE_OUTCOMES[report.outcome]
    return StepOutcome(outcome, report.reason_code, report.explanation, record, report.evidence)


def _llm_outcome(result: LlmReviewResult, *, stage: str) -> StepOutcome:
    record = result.to_json()
    if result.outcome == "reject":
        return StepOutcome("rejected", qualify(stage, "rejected"), result.reason, record, result.evidence)
    if result.outcome == "quarantine":
        return StepOutcome(
            "quarantined", qualify(stage, "unverified_rejection"), result.reason, record, result.evidence
        )
    if result.outcome == "hold":
        return StepOutcome("held", qualify(stage, "unavailable"), result.reason, record, result.evidence)
    detail = {
        "approve": "approved",
        "advisory_pass": "advisory review failed; passed and recorded",
        "disabled": "not configured",
    }.get(result.outcome, result.outcome)
    return StepOutcome("passed", qualify(stage, result.outcome), detail, record, result.evidence)


def _llm_config(ctx: StepContext) -> LlmReviewConfig:
    return LlmReviewConfig.from_settings(ctx.settings, ctx.runtime_config.llm_review_policy)


MAX_REFERENCES = 3


def reference_candidates(duplicates: Mapping[str, object], *, hotkey: str) -> list[tuple[str, float]]:
    """Which earlier submissions the reviewer may see, with their true scores, best first.

    Only what PRISM's own duplicate report scored as related (not `unrelated`), of other hotkeys:
    a prior that merely shared an index band is no reference, and a rival cannot get its text in
    front of the reviewer by being found. Scores are the report's own containments.
    """
    raw = duplicates.get("candidates")
    out: list[tuple[str, float]] = []
    for candidate in raw if isinstance(raw, list | tuple) else []:  # a tuple in memory, a list from JSON
        if not isinstance(candidate, Mapping) or candidate.get("relation") in (None, "unrelated"):
            continue
        if candidate.get("hotkey") == hotkey:
            continue
        score = max(float(candidate.get("new_in_prior", 0.0)), float(candidate.get("prior_in_new", 0.0)))
        out.append((str(candidate["submission_id"]), score))
    out.sort(key=lambda item: -item[1])
    return out[:MAX_REFERENCES]


def llm_review_step(ctx: StepContext) -> StepOutcome:
    config = _llm_config(ctx)
    references = reference_candidates(ctx.records.get("source_duplicates", {}), hotkey=ctx.submission.hotkey)
    with ctx.sessions() as session:
        similar = [SimilarSource(sid, score, load_project(session, sid)) for sid, score in references]
    result = review_project(ctx.project, config=config, context=ReviewContext(similar=tuple(similar)))
    return _llm_outcome(result, stage="llm_review")


def claims_review_step(ctx: StepContext) -> StepOutcome:
    """After evaluation: the miner's claims in prism.yaml against what PRISM measured.

    Claims are never scored. A contradiction is computed here, deterministically, and
    quarantines the submission with the figures (`scoring/claims.py` says why); an LLM rejection
    with verified evidence still outranks it. The LLM reviewer sees the measured figures too.
    """
    claims = ctx.project.config.claims
    if not claims:
        return StepOutcome.passed("no claims to review")
    manifest = ctx.records.get("validation", {}).get("manifest", {})
    verdict = review_claims(ctx.project.files.get("prism.yaml", ""), claims, manifest)
    # Each contradiction is a finding PRISM measured itself: the proof an LLM rejection may cite.
    findings = tuple(
        Finding("unsupported_claims", item.path, item.line, item.line, item.explanation)
        for item in verdict.contradictions
        if item.line
    )
    result = review_project(
        ctx.project, config=_llm_config(ctx), context=ReviewContext(measured=verdict.measured, findings=findings)
    )
    outcome = _llm_outcome(result, stage="claims_review")
    record = {
        **outcome.record,
        "measured": dict(verdict.measured),
        "contradictions": evidence_to_json(verdict.contradictions),
    }
    outcome = replace(outcome, record=record, evidence=outcome.evidence + verdict.contradictions)
    if verdict.contradicted and outcome.outcome in ("passed", "held"):
        # Deterministic evidence needs no LLM: quarantine now, with the figures, for an operator.
        return replace(outcome, outcome="quarantined", reason_code=CLAIMS_REASON, detail=verdict.detail())
    return outcome
