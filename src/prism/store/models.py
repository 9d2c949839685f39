"""PRISM's core tables. Other table modules (fingerprints, ...) register on the same `Base`."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from prism.store.base import Base, JsonDoc, UtcDateTime, utcnow


class SubmissionStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    HELD = "held"


class Miner(Base):
    __tablename__ = "miners"

    hotkey: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        # The same bytes from the same hotkey are one submission (the bridge answers with its id).
        UniqueConstraint("hotkey", "archive_sha256", name="uq_submissions_hotkey_archive"),
        Index("ix_submissions_queue", "status", "next_attempt_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    hotkey: Mapped[str] = mapped_column(ForeignKey("miners.hotkey"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=SubmissionStatus.PENDING.value)
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    code_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    archive_sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    byte_size: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer, index=True)
    origin: Mapped[str] = mapped_column(String(16), default="bridge")
    submit_metadata: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # The last pipeline stage that finished; a restarted worker resumes after it.
    stage: Mapped[str | None] = mapped_column(String(32))
    infra_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Architecture family this submission belongs to (owner's graph hash), once inspected.
    architecture_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SubmissionArchive(Base):
    """The bytes exactly as received, kept so nothing is ever lost."""

    __tablename__ = "submission_archives"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SourceFile(Base):
    """The per-file text snapshot of an accepted archive (what review and similarity read)."""

    __tablename__ = "source_files"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class Nonce(Base):
    __tablename__ = "nonces"

    hotkey: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class AuditEvent(Base):
    """Append-only: every state change, who made it, from what, to what and why."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    submission_id: Mapped[str | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


class StageResult(Base):
    """One pipeline step's decision and evidence, written before the next step begins."""

    __tablename__ = "stage_results"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Evaluation(Base):
    """The validated result of one submission's run: exactly one row per submission."""

    __tablename__ = "evaluations"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    hotkey: Mapped[str] = mapped_column(String(64), index=True)
    epoch: Mapped[int] = mapped_column(Integer, index=True)
    mode: Mapped[str] = mapped_column(String(32))
    score_eligible: Mapped[bool] = mapped_column(Boolean)
    bits_per_byte: Mapped[float] = mapped_column(Float)
    heldout_bits_per_byte: Mapped[float] = mapped_column(Float)
    final_score: Mapped[float] = mapped_column(Float)
    parameter_count: Mapped[int] = mapped_column(BigInteger)
    architecture_hash: Mapped[str] = mapped_column(String(64), index=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Architecture(Base):
    """An architecture family; its owner is whoever discovered it first and never changes."""

    __tablename__ = "architectures"

    graph_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_hotkey: Mapped[str] = mapped_column(String(64), index=True)
    owner_submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"))
    discovered_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    graph: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)


class RuntimeConfigRow(Base):
    """Versioned runtime-config documents; at most one is active."""

    __tablename__ = "runtime_config"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str | None] = mapped_column(Text)
