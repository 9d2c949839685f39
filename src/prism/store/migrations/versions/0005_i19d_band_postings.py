"""band postings keyed for the lookup (issue 19)

`similarity_bands` / `graph_bands` (id, band_key, submission_id; index on band_key, id) become
`similarity_postings` / `graph_postings` keyed by (band_key, created_us, submission_id), where
`created_us` is the submission's `created_at` in microseconds: a key's prior postings are one
primary-key range, read oldest first with no join. Rows are copied, not recomputed.

Revision ID: 0005_i19d
Revises: 0003_i17
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import prism.store.base

revision = "0005_i19d"
down_revision = "0004_i16"
branch_labels = None
depends_on = None

_PAIRS = (("similarity_bands", "similarity_postings"), ("graph_bands", "graph_postings"))
_CHUNK = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _submissions() -> sa.TableClause:
    created_at = sa.column("created_at", prism.store.base.UtcDateTime())
    return sa.table("submissions", sa.column("id", sa.String()), created_at)


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def upgrade() -> None:
    connection = op.get_bind()
    submissions = _submissions()
    for old, new in _PAIRS:
        table = op.create_table(
            new,
            sa.Column("band_key", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("created_us", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("submission_id", sa.String(length=36), autoincrement=False, nullable=False),
            sa.ForeignKeyConstraint(
                ["submission_id"], ["submissions.id"], name=op.f(f"fk_{new}_submission_id_submissions"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("band_key", "created_us", "submission_id", name=op.f(f"pk_{new}")),
            sqlite_with_rowid=False,
        )  # fmt: skip
        op.create_index(f"ix_{new}_submission_id", new, ["submission_id"], unique=False)
        bands = sa.table(old, sa.column("band_key", sa.BigInteger()), sa.column("submission_id", sa.String()))
        rows = connection.execute(
            sa.select(bands.c.band_key, bands.c.submission_id, submissions.c.created_at).join(
                submissions, submissions.c.id == bands.c.submission_id
            )
        )
        while chunk := rows.fetchmany(_CHUNK):
            op.bulk_insert(
                table,
                [
                    {
                        "band_key": key,
                        "created_us": _microseconds(created),
                        "submission_id": sid,
                    }
                    for key, sid, created in chunk
                ],
            )
        op.drop_index(f"ix_{old}_lookup", table_name=old)
        op.drop_table(old)


def downgrade() -> None:
    connection = op.get_bind()
    for old, new in _PAIRS:
        table = op.create_table(
            old,
            sa.Column("id", _ID, autoincrement=True, nullable=False),
            sa.Column("band_key", sa.BigInteger(), nullable=False),
            sa.Column("submission_id", sa.String(length=36), nullable=False),
            sa.ForeignKeyConstraint(
                ["submission_id"], ["submissions.id"], name=op.f(f"fk_{old}_submission_id_submissions"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{old}")),
        )  # fmt: skip
        op.create_index(f"ix_{old}_lookup", old, ["band_key", "id"], unique=False)
        postings = sa.table(
            new,
            sa.column("band_key", sa.BigInteger()),
            sa.column("created_us", sa.BigInteger()),
            sa.column("submission_id", sa.String()),
        )
        rows = connection.execute(
            sa.select(postings.c.band_key, postings.c.submission_id).order_by(
                postings.c.created_us, postings.c.submission_id, postings.c.band_key
            )
        )
        while chunk := rows.fetchmany(_CHUNK):
            op.bulk_insert(table, [{"band_key": key, "submission_id": sid} for key, sid in chunk])
        op.drop_index(f"ix_{new}_submission_id", table_name=new)
        op.drop_table(new)
