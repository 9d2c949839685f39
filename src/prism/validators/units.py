"""Work units: opened by the train stage, listed for Platform, claimed, reported once, expired.

Every rule that decides whether a validator's request counts lives here, over one session:

- only a hotkey on the runtime config's `validators.allowed_hotkeys` may claim or report;
- a unit is bound to the first allowed validator that claims it; any other validator's claim,
  archive fetch or result for it is refused (`unit_not_assigned`);
- one validator evaluates a submission at most once (`not_independent`): agreement needs
  independent runs;
- a unit takes exactly one result (`already_reported`); a lease that ran out (the validator
  stopped renewing it) takes none (`lease_expired`) and a replacement unit is opened;
- each (validator, nonce) works once (`replayed`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prism.runtime_config import ValidatorPolicy
from prism.store.base import utcnow
from prism.store.models import Submission, SubmissionStatus
from prism.store.validators import (
    UnitStatus,
    ValidatorNonce,
    ValidatorResult,
    ValidatorStanding,
    ValidatorUnit,
)
from prism.validators.errors import ValidatorRefused
from prism.validators.signing import Envelope

RESULT_STATUSES = ("ok", "rejected", "failed")
ARTIFACTS = ("loss_curve", "weights")
LIVE = (UnitStatus.OPEN.value, UnitStatus.LEASED.value)
WAITING = (SubmissionStatus.PENDING.value, SubmissionStatus.RUNNING.value, SubmissionStatus.HELD.value)


def open_units(
    session: Session,
    *,
    submission_id: str,
    hotkey: str,
    archive_sha256: str,
    job: Mapping[str, Any],
    runtime_config_version: int | None,
    count: int,
) -> list[ValidatorUnit]:
    """`count` new units for the submission, numbered after the ones it already has."""
    last = session.scalar(select(func.max(ValidatorUnit.replica)).where(ValidatorUnit.submission_id == submission_id))
    units = []
    for replica in range((last or 0) + 1, (last or 0) + 1 + count):
        unit = ValidatorUnit(
            id=f"{submission_id}.{replica}",
            submission_id=submission_id,
            hotkey=hotkey,
            replica=replica,
            status=UnitStatus.OPEN.value,
            archive_sha256=archive_sha256,
            job=dict(job),
            # Each unit probes causality at different steps; the record does not depend on it.
            probe_seed=secrets.randbits(62),
            runtime_config_version=runtime_config_version,
            created_at=utcnow(),
        )
        session.add(unit)
        units.append(unit)
    session.flush()
    return units


def units_of(session: Session, submission_id: str) -> list[ValidatorUnit]:
    return list(
        session.scalars(
            select(ValidatorUnit).where(ValidatorUnit.submission_id == submission_id).order_by(ValidatorUnit.replica)
        )
    )


def standing(session: Session, hotkey: str) -> ValidatorStanding:
    row = session.get(ValidatorStanding, hotkey)
    if row is None:
        row = ValidatorStanding(hotkey=hotkey, agreed=0, odd_one_out=0, invalid=0, expired=0, flagged=False)
        session.add(row)
        session.flush()
    return row


def expire_leases(session: Session, submission_id: str, now: datetime | None = None) -> list[ValidatorUnit]:
    """Leased units whose time ran out: expired, and counted against their validator."""
    now = now or utcnow()
    expired = []
    for unit in units_of(session, submission_id):
        if unit.status == UnitStatus.LEASED.value and unit.lease_expires_at is not None and unit.lease_expires_at < now:
            unit.status = UnitStatus.EXPIRED.value
            if unit.validator_hotkey:
                row = standing(session, unit.validator_hotkey)
                row.expired += 1
                row.updated_at = now
            expired.append(unit)
    session.flush()
    return expired


def close_open_units(session: Session, submission_id: str) -> None:
    """The submission is decided: units nobody finished are withdrawn from the listing."""
    for unit in units_of(session, submission_id):
        if unit.status in LIVE:
            unit.status = UnitStatus.CLOSED.value


def listed_units(session: Session, *, limit: int = 500) -> list[ValidatorUnit]:
    """Units waiting for or held by a validator, of submissions still being evaluated (an
    operator's rejection of a held submission withdraws its units from the listing)."""
    return list(
        session.scalars(
            select(ValidatorUnit)
            .join(Submission, Submission.id == ValidatorUnit.submission_id)
            .where(ValidatorUnit.status.in_(LIVE), Submission.status.in_(WAITING))
            .order_by(ValidatorUnit.created_at, ValidatorUnit.id)
            .limit(limit)
        )
    )


# -- a validator's requests ---------------------------------------------------------------------


def consume_nonce(session: Session, envelope: Envelope, *, ttl_seconds: int) -> None:
    cutoff = utcnow() - timedelta(seconds=2 * ttl_seconds)  # older envelopes are stale anyway
    session.execute(delete(ValidatorNonce).where(ValidatorNonce.created_at < cutoff))
    try:
        with session.begin_nested():
            session.add(ValidatorNonce(hotkey=envelope.validator_hotkey, nonce=envelope.nonce, created_at=utcnow()))
    except IntegrityError as exc:
        raise ValidatorRefused(409, "replayed", "this nonce was already used by this validator") from exc


def check_allowed(policy: ValidatorPolicy, hotkey: str) -> None:
    if policy.mode == "embedded":
        raise ValidatorRefused(403, "validators_disabled", "this PRISM does not take validator results")
    if hotkey not in policy.allowed_hotkeys:
        raise ValidatorRefused(403, "validator_not_allowed", "this hotkey is not on PRISM's allowed validator set")


def _unit(session: Session, envelope: Envelope) -> ValidatorUnit:
    unit = session.get(ValidatorUnit, envelope.work_unit_id, with_for_update=True)
    if unit is None:
        raise ValidatorRefused(404, "unknown_unit", f"no work unit {envelope.work_unit_id!r}")
    if unit.archive_sha256 != envelope.archive_sha256:
        raise ValidatorRefused(409, "archive_mismatch", "the envelope names another archive than this unit's")
    return unit


def _assigned(unit: ValidatorUnit, envelope: Envelope, now: datetime) -> None:
    if unit.validator_hotkey != envelope.validator_hotkey:
        raise ValidatorRefused(403, "unit_not_assigned", "this work unit is not assigned to this validator")
    if unit.status == UnitStatus.REPORTED.value:
        raise ValidatorRefused(409, "already_reported", "this work unit already has its result")
    if unit.status != UnitStatus.LEASED.value or (unit.lease_expires_at is not None and unit.lease_expires_at < now):
        raise ValidatorRefused(410, "lease_expired", "this unit's lease ran out; it was given to another validator")


def claim(session: Session, envelope: Envelope, policy: ValidatorPolicy) -> ValidatorUnit:
    """Bind the unit to this validator (or return the binding it already holds)."""
    now = utcnow()
    unit = _unit(session, envelope)
    if unit.status == UnitStatus.LEASED.value and unit.validator_hotkey == envelope.validator_hotkey:
        _assigned(unit, envelope, now)
        return unit
    if unit.status != UnitStatus.OPEN.value:
        if unit.validator_hotkey and unit.validator_hotkey != envelope.validator_hotkey:
            raise ValidatorRefused(403, "unit_not_assigned", "this work unit is assigned to another validator")
        raise ValidatorRefused(410, "unit_closed", f"this work unit is {unit.status}")
    others = session.scalar(
        select(func.count())
        .select_from(ValidatorUnit)
        .where(
            ValidatorUnit.submission_id == unit.submission_id,
            ValidatorUnit.validator_hotkey == envelope.validator_hotkey,
            ValidatorUnit.id != unit.id,
        )
    )
    if others:
        # Withdrawn: Platform will not hand this unit id out again, so the train stage opens a
        # replacement that another validator can take.
        unit.status = UnitStatus.EXPIRED.value
        session.flush()
        raise ValidatorRefused(403, "not_independent", "this validator already evaluated this submission")
    unit.status = UnitStatus.LEASED.value
    unit.validator_hotkey = envelope.validator_hotkey
    unit.leased_at = now
    unit.lease_expires_at = now + timedelta(seconds=policy.lease_seconds)
    session.flush()
    return unit


def renew(session: Session, envelope: Envelope, policy: ValidatorPolicy) -> ValidatorUnit:
    """The validator is still working: its lease runs `lease_seconds` from now. A silent
    validator stops renewing, and its unit expires."""
    unit = assigned_unit(session, envelope)
    unit.lease_expires_at = utcnow() + timedelta(seconds=policy.lease_seconds)
    session.flush()
    return unit


def assigned_unit(session: Session, envelope: Envelope) -> ValidatorUnit:
    unit = _unit(session, envelope)
    _assigned(unit, envelope, utcnow())
    return unit


@dataclass(frozen=True, slots=True)
class ClaimedResult:
    """What the validator's envelope says, shape-checked; nothing in it is trusted yet."""

    status: str
    reason_code: str | None
    figures: dict[str, Any]
    artifacts: dict[str, bytes]


def _decode(payload: Mapping[str, Any]) -> ClaimedResult:
    status = payload.get("status")
    if status not in RESULT_STATUSES:
        raise ValidatorRefused(400, "invalid_result", f"status must be one of {', '.join(RESULT_STATUSES)}")
    figures = payload.get("figures", {})
    if not isinstance(figures, dict):
        raise ValidatorRefused(400, "invalid_result", "figures must be an object")
    reason = payload.get("reason_code")
    if reason is not None and not (isinstance(reason, str) and len(reason) <= 64):
        raise ValidatorRefused(400, "invalid_result", "reason_code must be a short string")
    raw = payload.get("artifacts", {})
    if not isinstance(raw, dict) or not set(raw) <= set(ARTIFACTS):
        raise ValidatorRefused(400, "invalid_result", f"artifacts may hold only {', '.join(ARTIFACTS)}")
    artifacts = {}
    for name, text in raw.items():
        if not isinstance(text, str):
            raise ValidatorRefused(400, "invalid_result", f"artifact {name} must be base64 text")
        try:
            artifacts[name] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidatorRefused(400, "invalid_result", f"artifact {name} is not base64") from exc
    if status == "ok":
        train = figures.get("train")
        if not isinstance(train, dict) or set(artifacts) != set(ARTIFACTS):
            raise ValidatorRefused(400, "invalid_result", "an ok result carries train figures, loss_curve and weights")
        for name, key in (("loss_curve", "loss_curve_sha256"), ("weights", "weights_sha256")):
            if hashlib.sha256(artifacts[name]).hexdigest() != train.get(key):
                raise ValidatorRefused(400, "artifact_mismatch", f"{name} does not match train.{key}")
    return ClaimedResult(status=str(status), reason_code=reason, figures=figures, artifacts=artifacts)


def accept_result(session: Session, envelope: Envelope) -> ValidatorResult:
    """Store the unit's one result. Whether it counts is decided later, against the others."""
    unit = assigned_unit(session, envelope)
    claimed = _decode(envelope.payload)
    envelope_record = {**envelope.to_json(), "payload": {**envelope.payload, "artifacts": sorted(claimed.artifacts)}}
    result = ValidatorResult(
        unit_id=unit.id,
        submission_id=unit.submission_id,
        validator_hotkey=envelope.validator_hotkey,
        status=claimed.status,
        reason_code=claimed.reason_code,
        figures=claimed.figures,
        envelope=envelope_record,
        loss_curve=claimed.artifacts.get("loss_curve"),
        weights=claimed.artifacts.get("weights"),
        verdict="pending",
        received_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(result)
    except IntegrityError as exc:  # a concurrent duplicate: the primary key keeps it to one
        raise ValidatorRefused(409, "already_reported", "this work unit already has its result") from exc
    unit.status = UnitStatus.REPORTED.value
    unit.reported_at = utcnow()
    session.flush()
    return result


def results_of(session: Session, submission_id: str) -> list[ValidatorResult]:
    return list(
        session.scalars(
            select(ValidatorResult)
            .where(ValidatorResult.submission_id == submission_id)
            .order_by(ValidatorResult.received_at, ValidatorResult.unit_id)
        )
    )


def record_verdicts(
    session: Session,
    results: Sequence[ValidatorResult],
    verdicts: Mapping[str, tuple[str, str]],
    policy: ValidatorPolicy,
) -> list[str]:
    """Write each result's verdict and its validator's standing; returns newly flagged validators."""
    flagged = []
    now = utcnow()
    for result in results:
        if result.unit_id not in verdicts or result.verdict != "pending":
            continue
        verdict, reason = verdicts[result.unit_id]
        result.verdict = verdict
        result.verdict_reason = reason
        row = standing(session, result.validator_hotkey)
        if verdict == "agreed":
            row.agreed += 1
        elif verdict == "odd_one_out":
            row.odd_one_out += 1
        elif verdict == "invalid":
            row.invalid += 1
        if not row.flagged and row.odd_one_out + row.invalid >= policy.odd_one_out_flag:
            row.flagged = True
            flagged.append(row.hotkey)
        row.updated_at = now
    session.flush()
    return flagged
