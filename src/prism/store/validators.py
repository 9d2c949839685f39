"""Tables of the validator path: work units, the results validators claim, and who disagreed.

A work unit is one request for one independent evaluation of one submission by one validator;
a submission has several (quorum, replacements for silent validators, tie-breakers). Its id is
what Platform calls `submission_id`/`work_unit_id`. A unit is bound to the first allowed
validator that claims it and accepts exactly one result, from that validator only.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from prism.store.base import Base, JsonDoc, UtcDateTime, utcnow


class UnitStatus(enum.StrEnum):
    OPEN = "open"  # listed for Platform, not claimed yet
    LEASED = "leased"  # claimed by one validator; its lease runs
    REPORTED = "reported"  # its one result arrived (valid or not)
    EXPIRED = "expired"  # the lease ran out without a result; a replacement was opened
    CLOSED = "closed"  # the submission was decided before this unit reported


class ValidatorUnit(Base):
    __tablename__ = "validator_units"
    __table_args__ = (Index("ix_validator_units_status", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    hotkey: Mapped[str] = mapped_column(String(64))  # the miner (Platform's submission_ref)
    replica: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=UnitStatus.OPEN.value)
    validator_hotkey: Mapped[str | None] = mapped_column(String(64), index=True)
    archive_sha256: Mapped[str] = mapped_column(String(64))
    # The job without its secrets: what the listing and the claim may show.
    job: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    # Secret per unit (never listed; sent only to the validator that claimed it).
    probe_seed: Mapped[int] = mapped_column(BigInteger)
    runtime_config_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    leased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ValidatorResult(Base):
    """One result per unit (the primary key is the unit): a result is counted once."""

    __tablename__ = "validator_results"

    unit_id: Mapped[str] = mapped_column(ForeignKey("validator_units.id", ondelete="CASCADE"), primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    validator_hotkey: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # ok | rejected | failed (what the validator claims)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    # The validator's inspect and train figures, and the envelope it signed.
    figures: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    envelope: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    loss_curve: Mapped[bytes | None] = mapped_column(LargeBinary)
    weights: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Set by PRISM: "pending", "invalid" (failed PRISM's own checks), "agreed", "odd_one_out".
    verdict: Mapped[str] = mapped_column(String(16), default="pending")
    verdict_reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ValidatorNonce(Base):
    """Each (validator, nonce) works once: a replayed request is refused."""

    __tablename__ = "validator_nonces"

    hotkey: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class ValidatorStanding(Base):
    """How often a validator agreed with the others, was the odd one out, or sent an invalid result."""

    __tablename__ = "validator_standing"

    hotkey: Mapped[str] = mapped_column(String(64), primary_key=True)
    agreed: Mapped[int] = mapped_column(Integer, default=0)
    odd_one_out: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
