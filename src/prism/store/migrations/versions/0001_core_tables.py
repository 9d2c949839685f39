"""core tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24 22:27:57.437092
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import prism.store.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "miners",
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hotkey", name=op.f("pk_miners")),
    )
    op.create_table(
        "nonces",
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("created_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hotkey", "nonce", name=op.f("pk_nonces")),
    )
    with op.batch_alter_table("nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nonces_created_at"), ["created_at"], unique=False)

    op.create_table(
        "runtime_config",
        sa.Column("version", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "document", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_runtime_config")),
    )
    with op.batch_alter_table("runtime_config", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runtime_config_active"), ["active"], unique=False)

    op.create_table(
        "submissions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("archive_sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column(
            "submit_metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("infra_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", prism.store.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", prism.store.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("architecture_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("started_at", prism.store.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", prism.store.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["hotkey"], ["miners.hotkey"], name=op.f("fk_submissions_hotkey_miners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("hotkey", "archive_sha256", name="uq_submissions_hotkey_archive"),
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_submissions_architecture_hash"), ["architecture_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_submissions_code_hash"), ["code_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_submissions_epoch"), ["epoch"], unique=False)
        batch_op.create_index(batch_op.f("ix_submissions_hotkey"), ["hotkey"], unique=False)
        batch_op.create_index("ix_submissions_queue", ["status", "next_attempt_at", "created_at"], unique=False)

    op.create_table(
        "architectures",
        sa.Column("graph_hash", sa.String(length=64), nullable=False),
        sa.Column("owner_hotkey", sa.String(length=64), nullable=False),
        sa.Column("owner_submission_id", sa.String(length=36), nullable=False),
        sa.Column("discovered_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "graph", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["owner_submission_id"], ["submissions.id"], name=op.f("fk_architectures_owner_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("graph_hash", name=op.f("pk_architectures")),
    )
    with op.batch_alter_table("architectures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_architectures_owner_hotkey"), ["owner_hotkey"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=True),
        sa.Column("at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_audit_log_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_submission_id"), ["submission_id"], unique=False)

    op.create_table(
        "evaluations",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("score_eligible", sa.Boolean(), nullable=False),
        sa.Column("bits_per_byte", sa.Float(), nullable=False),
        sa.Column("heldout_bits_per_byte", sa.Float(), nullable=False),
        sa.Column("final_score", sa.Float(), nullable=False),
        sa.Column("parameter_count", sa.BigInteger(), nullable=False),
        sa.Column("architecture_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "manifest", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_evaluations_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_evaluations")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluations_architecture_hash"), ["architecture_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_evaluations_epoch"), ["epoch"], unique=False)
        batch_op.create_index(batch_op.f("ix_evaluations_hotkey"), ["hotkey"], unique=False)

    op.create_table(
        "source_files",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_source_files_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "path", name=op.f("pk_source_files")),
    )
    op.create_table(
        "stage_results",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column(
            "data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "evidence", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("started_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_stage_results_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "stage", name=op.f("pk_stage_results")),
    )
    op.create_table(
        "submission_archives",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_archives_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_submission_archives")),
    )


def downgrade() -> None:
    op.drop_table("submission_archives")
    op.drop_table("stage_results")
    op.drop_table("source_files")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluations_hotkey"))
        batch_op.drop_index(batch_op.f("ix_evaluations_epoch"))
        batch_op.drop_index(batch_op.f("ix_evaluations_architecture_hash"))

    op.drop_table("evaluations")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_submission_id"))

    op.drop_table("audit_log")
    with op.batch_alter_table("architectures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_architectures_owner_hotkey"))

    op.drop_table("architectures")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_submissions_queue")
        batch_op.drop_index(batch_op.f("ix_submissions_hotkey"))
        batch_op.drop_index(batch_op.f("ix_submissions_epoch"))
        batch_op.drop_index(batch_op.f("ix_submissions_code_hash"))
        batch_op.drop_index(batch_op.f("ix_submissions_architecture_hash"))

    op.drop_table("submissions")
    with op.batch_alter_table("runtime_config", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runtime_config_active"))

    op.drop_table("runtime_config")
    with op.batch_alter_table("nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nonces_created_at"))

    op.drop_table("nonces")
    op.drop_table("miners")
