"""Evidence-gated LLM policy review: `review_project` is the entry point the pipeline calls.

For each part of the project (see `llm_chunks.py`) a fresh conversation asks the model to call
`submit_mermaid` and then `submit_verdict`. The outcome comes only from those tool calls and from
PRISM's own evidence check (`llm_gate.py`), never from the model's prose:

- approve in every part                        -> "approve"
- a rejection with at least one proven item    -> "reject" (Evidence rule_id "llm.<rule_id>"): the
  quote is on the cited lines (`gate.py`) AND those lines carry a finding PRISM re-derives for
  the rule named (`proof.py`)
- a rejection that proves nothing              -> "quarantine", the claims kept for the operator
  (unless the runtime policy's evidence_required_for_rejection is false: then it stands)
- a rejection for plagiarism alone             -> overruled: PRISM's duplicate report decides copies
- references (earlier submissions) shown and the outcome a quarantine, or a part failing the
  protocol -> the review is run again without them, and that outcome stands: another miner's
  text never steers a verdict
- a part that could not be reviewed (provider error, timeout, unparseable answer, a verdict before
  the diagram after every retry) -> "hold" when review is required, "advisory_pass" when advisory.

Nothing is kept between calls: a review retried after a crash or requeue starts clean.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import openai

from prism.evidence import Evidence
from prism.intake.project import Project
from prism.review.llm.chunks import Chunk, plan_chunks
from prism.review.llm.client import ChatReply, OpenAIChat
from prism.review.llm.config import LlmReviewConfig, ReviewRule
from prism.review.llm.errors import LlmOrderingError, LlmProtocolError, LlmProviderError, LlmReviewError
from prism.review.llm.gate import verify_claim
from prism.review.llm.mermaid import validate_mermaid
from prism.review.llm.prompt import Prompt, build_prompt, fixed_chars
from prism.review.llm.proof import plagiarism_is_overruled, prove
from prism.review.llm.protocol import MERMAID_TOOL, VERDICT_TOOL, MermaidCall, VerdictCall, parse_call
from prism.review.llm.redact import redact
from prism.review.llm.transcript import Transcript
from prism.review.llm.types import (
    ChunkOutcome,
    ChunkReview,
    ClaimedEvidence,
    LlmReviewResult,
    ReviewContext,
    SimilarSource,
    TranscriptEntry,
)

__all__ = [
    "ClaimedEvidence",
    "LlmReviewConfig",
    "LlmReviewResult",
    "ReviewContext",
    "SimilarSource",
    "TranscriptEntry",
    "review_project",
]

log = logging.getLogger(__name__)

# Turns in one conversation: the diagram, the verdict, and room for one nudge after plain text.
MAX_TURNS = 4
# Share of a request the earlier submissions may take; the submission's own code gets the rest.
SIMILAR_SHARE = 0.25
NUDGE = f"Answer only through the tools: call {MERMAID_TOOL} first, then {VERDICT_TOOL}."


class ChatClient(Protocol):
    def complete(self, messages: list[dict[str, Any]]) -> ChatReply: ...


def review_project(
    project: Project,
    *,
    config: LlmReviewConfig,
    context: ReviewContext | None = None,
    client: openai.OpenAI | ChatClient | None = None,
) -> LlmReviewResult:
    """Review every line of `project`; see the module docstring for how the outcome is decided."""
    if not config.enabled:
        return LlmReviewResult(outcome="disabled", reason="LLM review is disabled", model=config.model)
    context = context or ReviewContext()
    chat: ChatClient = OpenAIChat(config, client) if client is None or isinstance(client, openai.OpenAI) else client
    result = _review(project, config, context, chat)
    steerable = result.outcome == "quarantine" or any(c.outcome == "protocol_error" for c in result.chunks)
    if context.similar and result.outcome != "reject" and steerable:
        # Reference text is another miner's code: it may inform a plagiarism note, never a verdict
        # against this miner. A suspicion, or a protocol failure (a reference can tell a model to
        # answer in prose), raised with it in the prompt is replaced by the outcome of a review
        # without it. (A proven rejection rests on this project's own lines and PRISM's own
        # check; an approval is not something a rival would steer towards; a provider outage is
        # no one's text.)
        log.info("llm review of %s: re-reviewed without reference material", project.code_hash[:12])
        plain = _review(project, config, dataclasses.replace(context, similar=()), chat)
        reason = f"{plain.reason} (decided without reference material; with it: {result.outcome})"
        return dataclasses.replace(plain, reason=reason, transcript=result.transcript + plain.transcript)
    return result


def _review(project: Project, config: LlmReviewConfig, context: ReviewContext, chat: ChatClient) -> LlmReviewResult:
    chunks, similar_budget = _plan(project, config, context)
    if not chunks:
        return LlmReviewResult(outcome="approve", reason="the project has no files to review", model=config.model)
    transcript = Transcript(config.secrets)
    reviews: list[ChunkReview] = []
    for index, chunk in enumerate(chunks):
        review = _review_chunk(
            chat, project, chunk, index, len(chunks), config=config, context=context,
            similar_budget=similar_budget, transcript=transcript,
        )  # fmt: skip
        reviews.append(review)
        if review.outcome == "provider_error":
            break  # the provider is down: the remaining parts would fail alike; hold and retry later
    result = _combine(project, config, reviews, len(chunks), tuple(transcript.entries))
    log.info(
        "llm review of %s: %s (%d of %d parts reviewed, model %s)",
        project.code_hash[:12], result.outcome, result.chunks_reviewed, len(chunks), config.model,
    )  # fmt: skip
    return result


def _plan(project: Project, config: LlmReviewConfig, context: ReviewContext) -> tuple[tuple[Chunk, ...], int]:
    rules: tuple[ReviewRule, ...] = config.rules
    similar_budget = int(config.max_request_chars * SIMILAR_SHARE) if context.similar else 0
    fixed = fixed_chars(project, rules, context, similar_budget=similar_budget)
    return plan_chunks(project, budget=config.max_request_chars - fixed), similar_budget


def _review_chunk(
    chat: ChatClient,
    project: Project,
    chunk: Chunk,
    index: int,
    total: int,
    *,
    config: LlmReviewConfig,
    context: ReviewContext,
    similar_budget: int,
    transcript: Transcript,
) -> ChunkReview:
    failure: LlmReviewError | None = None
    for attempt in range(1, config.attempts + 1):
        if attempt > 1 and config.retry_backoff_seconds:
            time.sleep(config.retry_backoff_seconds * (attempt - 1))
        prompt = build_prompt(
            project, chunk, index=index, total=total, context=context, rules=config.rules, similar_budget=similar_budget
        )
        _record_prompt(transcript, prompt, index, attempt)
        try:
            mermaid, verdict = _converse(chat, prompt, transcript, index, attempt)
        except LlmReviewError as exc:
            failure = exc
            transcript.add(index, attempt, "error", str(exc), name=type(exc).__name__)
            log.warning(
                "llm review part %d attempt %d/%d failed: %s: %s",
                index + 1, attempt, config.attempts, type(exc).__name__, redact(str(exc), config.secrets),
            )  # fmt: skip
            continue
        return _judge(project, config, context, chunk, index, attempt, mermaid, verdict)
    kind: ChunkOutcome = "provider_error" if isinstance(failure, LlmProviderError) else "protocol_error"
    return ChunkReview(
        index=index,
        spans=chunk.spans,
        outcome=kind,
        attempts=config.attempts,
        reason=redact(f"{type(failure).__name__}: {failure}", config.secrets),
    )


def _record_prompt(transcript: Transcript, prompt: Prompt, index: int, attempt: int) -> None:
    if attempt == 1:
        if index == 0:
            transcript.add(index, attempt, "system", prompt.system)
        transcript.add(index, attempt, "user", prompt.user)
    else:
        transcript.add(index, attempt, "user", f"[the prompt of attempt 1, fenced with boundary {prompt.boundary}]")


def _converse(
    chat: ChatClient, prompt: Prompt, transcript: Transcript, index: int, attempt: int
) -> tuple[str, VerdictCall]:
    """One fresh conversation: a valid diagram must come before the verdict, else it raises."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": prompt.system},
        {"role": "user", "content": prompt.user},
    ]
    mermaid: str | None = None
    for _turn in range(MAX_TURNS):
        reply = chat.complete(messages)
        if reply.content:
            transcript.add(index, attempt, "assistant", reply.content)
        for call in reply.tool_calls:
            transcript.add(index, attempt, "tool_call", call.arguments, name=call.name)
        if not reply.tool_calls:
            messages += [reply.as_message(), {"role": "user", "content": NUDGE}]
            transcript.add(index, attempt, "user", NUDGE)
            continue
        results: list[dict[str, Any]] = []
        for call in reply.tool_calls:
            parsed = parse_call(call.name, call.arguments)
            if isinstance(parsed, MermaidCall):
                mermaid = validate_mermaid(parsed.mermaid)
                results.append({"role": "tool", "tool_call_id": call.call_id, "content": "Diagram stored."})
            elif mermaid is None:
                raise LlmOrderingError(f"{VERDICT_TOOL} came before a valid {MERMAID_TOOL}")
            else:
                return mermaid, parsed
        follow = f"Now call {VERDICT_TOOL}."
        messages += [reply.as_message(), *results, {"role": "user", "content": follow}]
        transcript.add(index, attempt, "tool", follow)
    raise LlmProtocolError(f"no {VERDICT_TOOL} after {MAX_TURNS} turns")


def _judge(
    project: Project,
    config: LlmReviewConfig,
    context: ReviewContext,
    chunk: Chunk,
    index: int,
    attempt: int,
    mermaid: str,
    verdict: VerdictCall,
) -> ChunkReview:
    approved = ChunkReview(
        index=index,
        spans=chunk.spans,
        outcome="approve",
        attempts=attempt,
        mermaid=mermaid,
        reason=redact(verdict.reason, config.secrets),
        rule_ids=verdict.rule_ids,
        confidence=verdict.confidence,
    )
    if verdict.verdict == "approve":
        return approved
    if plagiarism_is_overruled(verdict.evidence, verdict.rule_ids):
        overruled = tuple(
            dataclasses.replace(c, problem="overruled: copies are decided by PRISM's duplicate review")
            for c in verdict.evidence
        )
        reason = f"plagiarism claim overruled by PRISM's duplicate review: {approved.reason}"
        return dataclasses.replace(approved, reason=reason, unverified_claims=overruled)
    proven: list[Evidence] = []
    unproven: list[ClaimedEvidence] = []
    for claim in verdict.evidence:
        located = verify_claim(project, claim, max_lines=config.max_evidence_lines)
        if not isinstance(located, Evidence):
            unproven.append(located)
            continue
        proof = prove(project, claim, context.findings)
        if proof.proven:
            proven.append(dataclasses.replace(located, explanation=f"{located.explanation} [proof: {proof.how}]"))
        else:
            unproven.append(dataclasses.replace(claim, problem=f"quote found, but no proof: {proof.how}"))
    stands = bool(proven) or not config.evidence_required_for_rejection
    return dataclasses.replace(
        approved,
        outcome="reject" if stands else "quarantine",
        verified_evidence=tuple(proven),
        unverified_claims=tuple(unproven),
    )


def _combine(
    project: Project,
    config: LlmReviewConfig,
    reviews: Sequence[ChunkReview],
    total: int,
    transcript: tuple[TranscriptEntry, ...],
) -> LlmReviewResult:
    verified = tuple(e for r in reviews for e in r.verified_evidence)
    unverified = tuple(c for r in reviews for c in r.unverified_claims)
    rejects = [r for r in reviews if r.outcome == "reject"]
    quarantines = [r for r in reviews if r.outcome == "quarantine"]
    failed = [r for r in reviews if r.outcome in ("provider_error", "protocol_error")]
    missing = total - len(reviews)
    deciding = rejects or quarantines
    approved = LlmReviewResult(
        outcome="approve",
        reason=_reasons(reviews),
        verified_evidence=verified,
        unverified_claims=unverified,
        chunks=tuple(reviews),
        transcript=transcript,
        rule_ids=tuple(dict.fromkeys(rule for r in (deciding or reviews) for rule in r.rule_ids)),
        confidence=_confidence(deciding, reviews),
        model=config.model,
        chunks_total=total,
    )
    if rejects:
        evidence = verified or _unverified_evidence(project, unverified, rejects)
        return dataclasses.replace(approved, outcome="reject", reason=_reasons(rejects), evidence=evidence)
    incomplete = bool(failed or missing)
    if incomplete and config.required:
        held = _hold_evidence(failed, missing)
        return dataclasses.replace(approved, outcome="hold", reason=_incomplete(failed, missing), evidence=held)
    if quarantines:
        evidence = _unverified_evidence(project, unverified, quarantines)
        return dataclasses.replace(approved, outcome="quarantine", reason=_reasons(quarantines), evidence=evidence)
    if incomplete:
        reason = "advisory review could not finish; passed and recorded: " + _incomplete(failed, missing)
        return dataclasses.replace(
            approved, outcome="advisory_pass", reason=reason, evidence=_hold_evidence(failed, missing)
        )
    return approved


def _confidence(deciding: Sequence[ChunkReview], reviews: Sequence[ChunkReview]) -> float | None:
    if deciding:
        values = [r.confidence for r in deciding if r.confidence is not None]
        return max(values) if values else None
    values = [r.confidence for r in reviews if r.confidence is not None]
    return min(values) if values else None


def _reasons(reviews: Sequence[ChunkReview]) -> str:
    if len(reviews) == 1:
        return reviews[0].reason
    return " | ".join(f"part {r.index + 1}: {r.reason}" for r in reviews)


def _incomplete(failed: Sequence[ChunkReview], missing: int) -> str:
    parts = [f"part {r.index + 1} failed after {r.attempts} attempts ({r.reason})" for r in failed]
    if missing:
        parts.append(f"{missing} part(s) not attempted after the provider failed")
    return "; ".join(parts)


def _hold_evidence(failed: Sequence[ChunkReview], missing: int) -> tuple[Evidence, ...]:
    kind = "provider_error" if any(r.outcome == "provider_error" for r in failed) else "protocol_error"
    return (Evidence(rule_id=f"llm.{kind}", path="", line=0, explanation=_incomplete(failed, missing)),)


def _unverified_evidence(
    project: Project, claims: tuple[ClaimedEvidence, ...], deciding: Sequence[ChunkReview]
) -> tuple[Evidence, ...]:
    """Pointers for an operator: where the model said the problem is, marked as unverified."""
    if claims:
        return tuple(
            Evidence(
                rule_id=f"llm.unverified.{claim.rule_id}",
                path=claim.path,
                line=max(0, claim.line_start),
                explanation=f"not verified ({claim.problem}): {claim.explanation}".strip(),
            )
            for claim in claims
        )
    return (
        Evidence(
            rule_id="llm.no_evidence",
            path=project.entrypoint,
            line=0,
            explanation=f"the reviewer rejected without citing evidence: {_reasons(deciding)}",
        ),
    )
