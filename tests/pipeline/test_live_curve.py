"""The live-curve writer: points stored as they come, a rerun starts clean, a failing store is no failure."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from prism.evaluation.progress import ProgressPoint
from prism.intake.project import Project
from prism.pipeline.live_curve import LiveCurveWriter
from prism.store.live_curve import live_curve
from prism.store.submissions import NewSubmission, create_submission

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _point(seq: int, bpb: float = 5.0) -> ProgressPoint:
    return ProgressPoint(
        phase="train", seq=seq, step=seq + 1, steps=8, tokens=256 * (seq + 1), bits_per_byte=bpb, mean_bits_per_byte=bpb
    )


def _submission(sessions: sessionmaker[Session]) -> str:
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session,
            NewSubmission(HOTKEY, "p.zip", b"bytes", epoch=1),
            project=Project({"model.py": "x = 1\n"}),
            rejection=None,
            actor="test",
        )
        return submission.id


def _stored(sessions: sessionmaker[Session], sid: str) -> list[tuple[int, int, float]]:
    with sessions() as session:
        return [(p.seq, p.attempt, p.bits_per_byte) for p in live_curve(session, sid, "train")]


def test_points_are_stored_once_and_a_rerun_clears_the_previous_attempt(sessions: sessionmaker[Session]) -> None:
    sid = _submission(sessions)
    with LiveCurveWriter(sessions, sid, "train", attempt=1) as writer:
        for seq in (0, 1, 1, 2):  # a point handed over twice is stored once
            writer.put(_point(seq))
    assert _stored(sessions, sid) == [(0, 1, 5.0), (1, 1, 5.0), (2, 1, 5.0)]
    assert writer.stored == 3
    with LiveCurveWriter(sessions, sid, "train", attempt=2) as writer:
        writer.put(_point(0, 7.0))
    assert _stored(sessions, sid) == [(0, 2, 7.0)]  # nothing of attempt 1 reads as attempt 2's


def test_a_store_that_fails_drops_the_points_and_the_phase_goes_on(
    sessions: sessionmaker[Session], engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    sid = _submission(sessions)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE live_curve_points"))
    with caplog.at_level(logging.WARNING), LiveCurveWriter(sessions, sid, "train", attempt=1, budget_seconds=0.5) as w:
        w.put(_point(0))
    assert w.stored == 0
    assert "points dropped" in caplog.text
