from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from prism.pipeline.queue import LeaseLost, claim_next, fenced, renew_lease
from prism.store.base import utcnow
from prism.store.models import AuditEvent, Submission
from prism.store.submissions import NewSubmission, create_submission

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _seed(sessions: sessionmaker[Session], count: int) -> list[str]:
    ids = []
    for i in range(count):
        with sessions() as session, session.begin():
            submission, _ = create_submission(
                session,
                NewSubmission(HOTKEY, "m.py", f"{i}".encode(), epoch=1),
                project=None,
                rejection=None,
                actor="t",
            )
            ids.append(submission.id)
    return ids


def test_claims_in_order_and_one_at_a_time(sessions: sessionmaker[Session]) -> None:
    ids = _seed(sessions, 2)
    first = claim_next(sessions, "w1", lease_seconds=60)
    second = claim_next(sessions, "w2", lease_seconds=60)
    assert first is not None and second is not None
    assert [first.submission_id, second.submission_id] == ids
    assert claim_next(sessions, "w3", lease_seconds=60) is None


def test_concurrent_claimers_never_share_a_submission(sessions: sessionmaker[Session]) -> None:
    ids = set(_seed(sessions, 30))
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while (claim := claim_next(sessions, name, lease_seconds=60)) is not None:
            with lock:
                claimed.append(claim.submission_id)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)


def test_expired_lease_is_requeued_and_fenced(sessions: sessionmaker[Session]) -> None:
    [sid] = _seed(sessions, 1)
    dead = claim_next(sessions, "dead-worker", lease_seconds=60)
    assert dead is not None
    with sessions() as session, session.begin():
        row = session.get(Submission, sid)
        assert row is not None
        row.lease_expires_at = utcnow() - timedelta(seconds=1)
    alive = claim_next(sessions, "new-worker", lease_seconds=60)
    assert alive is not None and alive.submission_id == sid
    # The old worker wakes up: it can neither renew nor write.
    assert not renew_lease(sessions, dead, lease_seconds=60)
    with pytest.raises(LeaseLost), fenced(sessions, dead):
        pass
    with fenced(sessions, alive) as (_session, submission):
        assert submission.lease_owner == "new-worker"
    with sessions() as session:
        reasons = session.scalars(select(AuditEvent.reason_code).where(AuditEvent.submission_id == sid)).all()
        assert "lease_expired" in reasons


def test_live_lease_is_not_taken(sessions: sessionmaker[Session]) -> None:
    _seed(sessions, 1)
    claim = claim_next(sessions, "w1", lease_seconds=60)
    assert claim is not None
    assert renew_lease(sessions, claim, lease_seconds=60)
    assert claim_next(sessions, "w2", lease_seconds=60) is None
