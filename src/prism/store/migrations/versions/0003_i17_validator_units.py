"""validator work units, results, nonces and standing

Revision ID: 0003_i17
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import prism.store.base

revision = "0003_i17"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _utc() -> prism.store.base.UtcDateTime:
    return prism.store.base.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "validator_units",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("replica", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("validator_hotkey", sa.String(length=64), nullable=True),
        sa.Column("archive_sha256", sa.String(length=64), nullable=False),
        sa.Column("job", _JSON, nullable=False),
        sa.Column("probe_seed", sa.BigInteger(), nullable=False),
        sa.Column("runtime_config_version", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("leased_at", _utc(), nullable=True),
        sa.Column("lease_expires_at", _utc(), nullable=True),
        sa.Column("reported_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_validator_units_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validator_units")),
    )
    with op.batch_alter_table("validator_units", schema=None) as batch_op:
        batch_op.create_index("ix_validator_units_status", ["status", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_validator_units_submission_id"), ["submission_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_validator_units_validator_hotkey"), ["validator_hotkey"], unique=False)

    op.create_table(
        "validator_results",
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("validator_hotkey", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("figures", _JSON, nullable=False),
        sa.Column("envelope", _JSON, nullable=False),
        sa.Column("loss_curve", sa.LargeBinary(), nullable=True),
        sa.Column("weights", sa.LargeBinary(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("verdict_reason", sa.Text(), nullable=True),
        sa.Column("received_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_validator_results_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["validator_units.id"],
            name=op.f("fk_validator_results_unit_id_validator_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_validator_results")),
    )
    with op.batch_alter_table("validator_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_validator_results_submission_id"), ["submission_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_validator_results_validator_hotkey"), ["validator_hotkey"], unique=False)

    op.create_table(
        "validator_nonces",
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("hotkey", "nonce", name=op.f("pk_validator_nonces")),
    )
    with op.batch_alter_table("validator_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_validator_nonces_created_at"), ["created_at"], unique=False)

    op.create_table(
        "validator_standing",
        sa.Column("hotkey", sa.String(length=64), nullable=False),
        sa.Column("agreed", sa.Integer(), nullable=False),
        sa.Column("odd_one_out", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("hotkey", name=op.f("pk_validator_standing")),
    )


def downgrade() -> None:
    op.drop_table("validator_standing")
    with op.batch_alter_table("validator_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_validator_nonces_created_at"))
    op.drop_table("validator_nonces")
    op.drop_table("validator_results")
    op.drop_table("validator_units")
