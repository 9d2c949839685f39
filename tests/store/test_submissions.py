from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from prism.evidence import Evidence
from prism.intake.project import Project
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import Submission
from prism.store.submissions import (
    NewSubmission,
    Rejection,
    counts_by_status,
    create_submission,
    load_archive,
    load_project,
    queue_position,
    stage_results,
)

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
OTHER = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"


def test_source_snapshot_and_bytes_are_kept(sessions: sessionmaker[Session]) -> None:
    project = Project({"model.py": "def build_model(ctx):\n    pass\n", "util.py": "X = 1\n"})
    with sessions() as session, session.begin():
        submission, created = create_submission(
            session,
            NewSubmission(HOTKEY, "p.zip", b"PK-bytes", epoch=7, metadata={"k": "v"}),
            project=project,
            rejection=None,
            actor="platform",
        )
        sid = submission.id
    assert created
    with sessions() as session:
        assert load_archive(session, sid) == b"PK-bytes"
        assert load_project(session, sid) == dict(project.files)
        row = session.get(Submission, sid)
        assert row is not None
        assert (row.status, row.epoch, row.byte_size, row.code_hash) == ("pending", 7, 8, project.code_hash)
        assert row.submit_metadata == {"k": "v"}


def test_same_bytes_same_hotkey_is_one_submission(sessions: sessionmaker[Session]) -> None:
    ids = []
    for hotkey in (HOTKEY, HOTKEY, OTHER):
        with sessions() as session, session.begin():
            submission, _ = create_submission(
                session, NewSubmission(hotkey, "m.py", b"same", epoch=1), project=None, rejection=None, actor="t"
            )
            ids.append(submission.id)
    assert ids[0] == ids[1] != ids[2]


def test_rejected_at_intake_keeps_evidence(sessions: sessionmaker[Session]) -> None:
    evidence = (Evidence.at("archive.symlink", "link", 0, "symlink entries are refused"),)
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session,
            NewSubmission(HOTKEY, "a.zip", b"zip", epoch=1),
            project=None,
            rejection=Rejection("archive.symlink", "symlink", evidence),
            actor="platform",
        )
        sid = submission.id
    with sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None and row.status == "rejected" and row.reason_code == "archive.symlink"
        [stage] = stage_results(session, sid)
        assert stage.stage == "intake" and stage.evidence[0]["rule_id"] == "archive.symlink"
        assert load_archive(session, sid) == b"zip"  # nothing is lost, even when rejected


def test_counts_and_queue_position(sessions: sessionmaker[Session]) -> None:
    rows = []
    for i in range(3):
        with sessions() as session, session.begin():
            submission, _ = create_submission(
                session,
                NewSubmission(HOTKEY, "m.py", f"{i}".encode(), epoch=1),
                project=None,
                rejection=None,
                actor="t",
            )
            rows.append(submission.id)
    with sessions() as session:
        positions = [queue_position(session, session.get(Submission, sid)) for sid in rows]  # type: ignore[arg-type]
        assert positions == [1, 2, 3]
        counts = counts_by_status(session)
        assert counts["pending"] == 3 and counts["rejected"] == 0 and set(counts) >= {"held", "quarantined", "failed"}


def test_the_same_bytes_racing_in_two_transactions_are_one_submission(fresh_postgres_url: str) -> None:
    """PostgreSQL lets two uploads of the same bytes run at once: the second one's pre-check sees
    nothing (the first has not committed), its insert waits for the first and then inserts
    nothing, and it answers with the first submission instead of an error."""
    engine = make_engine(fresh_postgres_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    first_inserted, first_may_commit = threading.Event(), threading.Event()
    answers: dict[str, tuple[str, bool]] = {}

    def upload(name: str) -> None:
        with sessions() as session, session.begin():
            submission, created = create_submission(
                session, NewSubmission(HOTKEY, "m.py", b"raced", epoch=1), project=None, rejection=None, actor="t"
            )
            answers[name] = (submission.id, created)
            if name == "first":
                first_inserted.set()
                assert first_may_commit.wait(30)

    first = threading.Thread(target=upload, args=("first",))
    first.start()
    assert first_inserted.wait(30)
    second = threading.Thread(target=upload, args=("second",))
    second.start()
    second.join(timeout=1.0)
    assert second.is_alive()  # its insert waits on the first transaction's row
    first_may_commit.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert answers["first"][1] is True
    assert answers["second"] == (answers["first"][0], False)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 1
    engine.dispose()
