"""The weights generation: every writer of what the weights read bumps it (a missed bump means
stale weights), intake never touches it, and a bump is visible exactly when its data is."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, event
from sqlalchemy.orm import Session, sessionmaker

from prism.api.weights import WeightsCache
from prism.config import Settings
from prism.store.base import utcnow
from prism.store.db import run_write
from prism.store.lifecycle import transition
from prism.store.models import Evaluation, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.runtime_configs import set_runtime_config
from prism.store.scores import claim_architecture, record_evaluation
from prism.store.submissions import NewSubmission, Rejection, create_submission, epoch_at
from prism.store.weights_generation import WeightsGeneration, read_generation, weights_changed

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
EPOCH_SECONDS = 4320


def _generation(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return read_generation(session)


def _submission(sessions: sessionmaker[Session], data: bytes, *path: S) -> str:
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session, NewSubmission(HOTKEY, "model.py", data, epoch=1), project=None, rejection=None, actor="test"
        )
        for target in path:
            transition(session, submission, target, actor="test")
        return submission.id


def _evaluation(submission_id: str, family: str = "f" * 64) -> Evaluation:
    return Evaluation(
        submission_id=submission_id,
        hotkey=HOTKEY,
        epoch=epoch_at(utcnow(), EPOCH_SECONDS),
        mode="official",
        score_eligible=True,
        bits_per_byte=2.0,
        heldout_bits_per_byte=2.0,
        final_score=0.25,
        parameter_count=10,
        architecture_hash=family,
        manifest={},
        created_at=utcnow(),
    )


def _complete(session: Session, submission_id: str) -> None:
    submission = session.get(Submission, submission_id)
    assert submission is not None
    transition(session, submission, S.COMPLETED, actor="worker:test")


def _claim(session: Session, submission_id: str) -> None:
    claim_architecture(session, graph_hash="a" * 64, hotkey=HOTKEY, submission_id=submission_id, graph={})


def _set_config(session: Session) -> None:
    set_runtime_config(session, {"rewards": {"owner_share": 0.5}}, actor="op")


# Every writer of what the weights read: (what it needs written first, the write itself).
Writer = Callable[[Session, str], object]
WRITERS: dict[str, tuple[tuple[S, ...], bool, Writer]] = {
    "completion": ((S.RUNNING,), True, _complete),
    "evaluation": ((S.RUNNING,), False, lambda session, sid: record_evaluation(session, _evaluation(sid))),
    "family claim": ((S.RUNNING,), False, _claim),
    "runtime config": ((), False, lambda session, _sid: _set_config(session)),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_writer_bumps_the_generation_and_the_refresher_recomputes(
    name: str, engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path, evaluated, write = WRITERS[name]
    sid = _submission(sessions, name.encode(), *path)
    if evaluated:
        with sessions() as session, session.begin():
            record_evaluation(session, _evaluation(sid))
    settings = Settings(data_dir=tmp_path, database_url=str(engine.url), epoch_seconds=EPOCH_SECONDS)
    cache = WeightsCache(settings, sessions)
    assert cache.refresh()
    assert not cache.refresh()  # nothing changed since
    before = _generation(sessions)
    # The production commit path (a write session, retried as a unit), as the worker uses it.
    run_write(sessions, lambda session: write(session, sid))
    assert _generation(sessions) == before + 1
    assert cache.refresh()  # the change reached the weights
    if name == "completion":
        assert cache.get().metadata["submissions_considered"] == 1
    cache.stop()


def test_repeated_writes_that_change_nothing_do_not_bump(sessions: sessionmaker[Session]) -> None:
    sid = _submission(sessions, b"repeat", S.RUNNING)
    with sessions() as session, session.begin():
        record_evaluation(session, _evaluation(sid))
        _claim(session, sid)
    before = _generation(sessions)
    with sessions() as session, session.begin():
        record_evaluation(session, _evaluation(sid))  # stored already: returned unchanged
        _claim(session, sid)  # first discovery wins: the owner stays
    assert _generation(sessions) == before


@pytest.mark.parametrize(
    "path",
    [
        (S.RUNNING,),
        (S.RUNNING, S.FAILED),
        (S.RUNNING, S.REJECTED),
        (S.RUNNING, S.QUARANTINED),
        (S.RUNNING, S.HELD, S.PENDING),
        (S.REJECTED,),
    ],
)
def test_moves_other_than_completion_do_not_bump(sessions: sessionmaker[Session], path: tuple[S, ...]) -> None:
    before = _generation(sessions)
    _submission(sessions, repr(path).encode(), *path)
    assert _generation(sessions) == before


def test_intake_never_touches_the_generation_row(engine: Engine, sessions: sessionmaker[Session]) -> None:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    before = _generation(sessions)
    event.listen(engine, "before_cursor_execute", record)
    try:
        with sessions() as session, session.begin():
            create_submission(
                session, NewSubmission(HOTKEY, "a.py", b"a", epoch=1), project=None, rejection=None, actor="bridge"
            )
            refused = Rejection("archive.invalid", "not a zip", ())
            create_submission(
                session, NewSubmission(HOTKEY, "b.zip", b"b", epoch=1), project=None, rejection=refused, actor="bridge"
            )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements and not [s for s in statements if "weights_generation" in s]
    assert _generation(sessions) == before


def test_a_rolled_back_write_does_not_bump_and_its_mark_does_not_leak(sessions: sessionmaker[Session]) -> None:
    sid = _submission(sessions, b"rollback", S.RUNNING)
    before = _generation(sessions)
    with sessions() as session:
        with pytest.raises(RuntimeError), session.begin():
            record_evaluation(session, _evaluation(sid))
            raise RuntimeError("the step failed")
        with session.begin():  # the same session's next, unrelated transaction
            session.get(Submission, sid)
    assert _generation(sessions) == before


def test_the_bump_is_visible_only_with_its_commit(sessions: sessionmaker[Session]) -> None:
    before = _generation(sessions)
    writer = sessions()
    writer.begin()
    weights_changed(writer)
    writer.flush()
    assert _generation(sessions) == before  # nothing committed yet
    writer.commit()
    writer.close()
    assert _generation(sessions) == before + 1


def test_a_missing_row_is_recreated_by_the_next_bump(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        session.execute(delete(WeightsGeneration))
    assert _generation(sessions) == 0
    with sessions() as session, session.begin():
        weights_changed(session)
    assert _generation(sessions) == 1


def test_concurrent_bumps_are_never_lost(sessions: sessionmaker[Session]) -> None:
    """Writers in several threads (on PostgreSQL: side by side) each add exactly one."""
    before = _generation(sessions)
    threads, each = 4, 10
    errors: list[BaseException] = []

    def bump_many() -> None:
        try:
            for _ in range(each):
                run_write(sessions, weights_changed)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=bump_many) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert _generation(sessions) == before + threads * each
