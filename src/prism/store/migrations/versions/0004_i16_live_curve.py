"""live curve points: the recorder's advisory progress while a phase runs

Revision ID: 0004_i16
Revises: 0003_i17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import prism.store.base

revision = "0004_i16"
down_revision = "0003_i17"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_curve_points",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("bits_per_byte", sa.Float(), nullable=False),
        sa.Column("mean_bits_per_byte", sa.Float(), nullable=False),
        sa.Column("recorded_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_live_curve_points_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "phase", "seq", name=op.f("pk_live_curve_points")),
    )


def downgrade() -> None:
    op.drop_table("live_curve_points")
