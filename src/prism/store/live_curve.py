"""Live progress points of a running phase: what the recorder reported while it trained.

Advisory only: written by the worker as the recorder's MAC'd progress lines arrive (see
`evaluation/progress.py`), shown as live and unverified, and never read by validation, scoring
or ownership; the signed report's loss curve is the only one that counts. A rerun of a phase
(a retry, a resumed job) clears that phase's points first, so one attempt's points stand alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from prism.store.base import Base, UtcDateTime, utcnow


class LiveCurvePoint(Base):
    __tablename__ = "live_curve_points"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    phase: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(BigInteger)
    bits_per_byte: Mapped[float] = mapped_column(Float)
    mean_bits_per_byte: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def reset_live_curve(session: Session, submission_id: str, phase: str) -> None:
    session.execute(
        delete(LiveCurvePoint).where(LiveCurvePoint.submission_id == submission_id, LiveCurvePoint.phase == phase)
    )


def add_live_points(session: Session, points: Iterable[LiveCurvePoint]) -> int:
    """Store new points; one already stored (same submission, phase and seq) is left as it is."""
    added = 0
    for point in points:
        if session.get(LiveCurvePoint, (point.submission_id, point.phase, point.seq)) is None:
            session.add(point)
            added += 1
    return added


def live_curve(session: Session, submission_id: str, phase: str = "train") -> Sequence[LiveCurvePoint]:
    return session.scalars(
        select(LiveCurvePoint)
        .where(LiveCurvePoint.submission_id == submission_id, LiveCurvePoint.phase == phase)
        .order_by(LiveCurvePoint.seq)
    ).all()
