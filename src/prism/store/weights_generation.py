"""One row that says "the weights may have changed": what the weights refresher polls.

The weights read completed submissions' evaluations, family owners and the active reward
policy. Every writer of those (`transition` to completed, `record_evaluation`,
`claim_architecture`, `set_runtime_config`) calls `weights_changed(session)`, and the
transaction bumps `weights_generation.generation` just before it commits. The refresher reads
that one row by its primary key: O(1) at any number of results, where counting them was O(n).

Why a counter row and not a sequence or an append-only log: a sequence value (or a serial id)
is visible before its transaction commits, and transactions commit out of order, so a reader
could see the newest number, recompute before the data is there, and never look again. An
UPDATE of one row becomes visible exactly with the data it was committed with.

Why at commit: the bump is the transaction's last statement, so a transaction holding the row's
lock is only committing, never waiting on another lock (no deadlock, however the writers order
their rows), and completions, rare (one per evaluated run), wait on each other for at most a
commit. Intake never marks a session: uploads never touch this row.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import BigInteger, Integer, Table, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from prism.store.base import Base

ROW_ID = 1
_MARK = "prism.weights_changed"


class WeightsGeneration(Base):
    """A single row (id 1), created by migration 0006_i19w."""

    __tablename__ = "weights_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


_TABLE = cast(Table, WeightsGeneration.__table__)
# An upsert, so a missing row (a database restored without it) is recreated, never silently
# left unbumped.
_BUMP: dict[str, Any] = {
    name: make(_TABLE)
    .values(id=ROW_ID, generation=1)
    .on_conflict_do_update(index_elements=["id"], set_={"generation": _TABLE.c.generation + 1})
    for name, make in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}
_READ = select(_TABLE.c.generation).where(_TABLE.c.id == ROW_ID)


def weights_changed(session: Session) -> None:
    """This transaction writes something the weights read: bump the generation when it commits."""
    session.info[_MARK] = True


def read_generation(session: Session) -> int:
    """The committed generation: one primary-key lookup (0 before any bump)."""
    return int(session.execute(_READ).scalar() or 0)


def bump(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    statement = _BUMP.get(dialect)
    if statement is None:
        raise NotImplementedError(f"weights generation: no upsert for the {dialect} dialect")
    session.execute(statement)


@event.listens_for(Session, "before_commit")
def _bump_before_commit(session: Session) -> None:
    if session.info.pop(_MARK, False):
        session.flush()  # the marked writes go first: the row's lock is the last one taken
        bump(session)


@event.listens_for(Session, "after_transaction_end")
def _forget_on_end(session: Session, transaction: SessionTransaction) -> None:
    # A rolled-back (or closed) transaction changed nothing: its mark must not bump a later one.
    if transaction.parent is None:
        session.info.pop(_MARK, None)
