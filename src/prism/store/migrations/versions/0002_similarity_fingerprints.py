"""similarity fingerprints

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 22:55:44.764653
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import prism.store.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "duplicate_reports",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=False),
        sa.Column(
            "report", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_duplicate_reports_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "stage", name=op.f("pk_duplicate_reports")),
    )
    with op.batch_alter_table("duplicate_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duplicate_reports_outcome"), ["outcome"], unique=False)

    op.create_table(
        "graph_bands",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("band_key", sa.BigInteger(), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_graph_bands_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_graph_bands")),
    )
    with op.batch_alter_table("graph_bands", schema=None) as batch_op:
        batch_op.create_index("ix_graph_bands_lookup", ["band_key", "id"], unique=False)

    op.create_table(
        "graph_fingerprints",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("graph_hash", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_graph_fingerprints_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_graph_fingerprints")),
    )
    with op.batch_alter_table("graph_fingerprints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_graph_fingerprints_graph_hash"), ["graph_hash"], unique=False)

    op.create_table(
        "similarity_bands",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("band_key", sa.BigInteger(), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_similarity_bands_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_similarity_bands")),
    )
    with op.batch_alter_table("similarity_bands", schema=None) as batch_op:
        batch_op.create_index("ix_similarity_bands_lookup", ["band_key", "id"], unique=False)

    op.create_table(
        "source_fingerprints",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("normalized_sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", prism.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_source_fingerprints_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_source_fingerprints")),
    )
    with op.batch_alter_table("source_fingerprints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_fingerprints_normalized_sha256"), ["normalized_sha256"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("source_fingerprints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_fingerprints_normalized_sha256"))

    op.drop_table("source_fingerprints")
    with op.batch_alter_table("similarity_bands", schema=None) as batch_op:
        batch_op.drop_index("ix_similarity_bands_lookup")

    op.drop_table("similarity_bands")
    with op.batch_alter_table("graph_fingerprints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_graph_fingerprints_graph_hash"))

    op.drop_table("graph_fingerprints")
    with op.batch_alter_table("graph_bands", schema=None) as batch_op:
        batch_op.drop_index("ix_graph_bands_lookup")

    op.drop_table("graph_bands")
    with op.batch_alter_table("duplicate_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_reports_outcome"))

    op.drop_table("duplicate_reports")
