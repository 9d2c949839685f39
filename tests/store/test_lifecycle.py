from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from prism.evidence import Evidence
from prism.store.lifecycle import IllegalTransition, transition
from prism.store.models import AuditEvent, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.submissions import NewSubmission, create_submission

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _new(sessions: sessionmaker[Session], data: bytes = b"print(1)") -> str:
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session, NewSubmission(HOTKEY, "model.py", data, epoch=1), project=None, rejection=None, actor="test"
        )
        return submission.id


def test_every_transition_is_audited(sessions: sessionmaker[Session]) -> None:
    sid = _new(sessions)
    evidence = (Evidence.at("static.forbidden_call", "model.py", 3, "eval is forbidden", snippet="eval(x)"),)
    with sessions() as session, session.begin():
        submission = session.get(Submission, sid)
        assert submission is not None
        transition(session, submission, S.RUNNING, actor="worker:a")
        transition(
            session,
            submission,
            S.REJECTED,
            actor="worker:a",
            reason_code="static.forbidden_call",
            reason="eval",
            evidence=evidence,
        )
    with sessions() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.submission_id == sid).order_by(AuditEvent.id)
        ).all()
        moves = [(e.from_status, e.to_status) for e in events]
        assert moves == [(None, "pending"), ("pending", "running"), ("running", "rejected")]
        assert events[-1].data["evidence"][0]["rule_id"] == "static.forbidden_call"
        assert events[-1].data["evidence"][0]["snippet_sha256"] == evidence[0].snippet_sha256
        submission = session.get(Submission, sid)
        assert submission is not None
        assert submission.status == "rejected" and submission.reason_code == "static.forbidden_call"


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), S.COMPLETED),
        ((S.RUNNING, S.COMPLETED), S.PENDING),
        ((S.RUNNING, S.REJECTED), S.PENDING),
        ((S.RUNNING, S.QUARANTINED), S.COMPLETED),
    ],
)
def test_illegal_moves_are_refused(sessions: sessionmaker[Session], path: tuple[S, ...], illegal: S) -> None:
    sid = _new(sessions)
    with sessions() as session, session.begin():
        submission = session.get(Submission, sid)
        assert submission is not None
        for step in path:
            transition(session, submission, step, actor="t")
        with pytest.raises(IllegalTransition):
            transition(session, submission, illegal, actor="t")
        assert submission.status == (path[-1].value if path else "pending")
