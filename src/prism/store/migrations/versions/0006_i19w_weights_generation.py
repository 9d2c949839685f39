"""weights generation: one row the weights refresher polls instead of counting (issue 19)

`weights_generation` (id, generation) holds a single row, id 1, bumped by every transaction
that writes what the weights read (see `prism.store.weights_generation`).

Revision ID: 0006_i19w
Revises: 0005_i19d
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_i19w"
down_revision = "0005_i19d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "weights_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weights_generation")),
    )
    op.bulk_insert(table, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("weights_generation")
