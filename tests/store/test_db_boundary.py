"""The database boundary in store/db.py: the write lock taken up front and waited for, lost
insert races run again, transient errors told apart from bugs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from prism.store.base import utcnow
from prism.store.db import (
    is_transient,
    make_engine,
    make_session_factory,
    run_write,
    write_session,
    writer_gate,
)
from prism.store.migrate import upgrade
from prism.store.models import Miner


def test_a_read_then_write_waits_for_a_lock_held_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "prism.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO miners (hotkey, first_seen_at) VALUES ('held', '2026-01-01 00:00:00')")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    with write_session(sessions) as session:  # waits for the other writer instead of failing
        seen = session.scalars(select(Miner.hotkey)).all()
        session.add(Miner(hotkey="after", first_seen_at=utcnow()))
    release.join()
    holder.close()
    assert time.monotonic() - started >= 0.4
    assert "held" in seen  # it read after the other writer committed: no lost update
    with sessions() as session:
        assert set(session.scalars(select(Miner.hotkey))) == {"held", "after"}
    engine.dispose()


def test_a_lost_insert_race_is_run_again_and_a_repeating_one_is_raised(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        session.add(Miner(hotkey="raced", first_seen_at=utcnow()))
    attempts: list[int] = []

    def work(session: Session) -> str:
        attempts.append(1)
        if len(attempts) == 1:  # the other worker's row is already there: a real unique violation
            session.execute(insert(Miner).values(hotkey="raced", first_seen_at=utcnow()))
        return "done"

    assert run_write(sessions, work) == "done"
    assert len(attempts) == 2

    def always(session: Session) -> None:
        session.execute(insert(Miner).values(hotkey="raced", first_seen_at=utcnow()))

    with pytest.raises(IntegrityError):
        run_write(sessions, always)


def test_transient_and_permanent_failures_are_told_apart(sessions: sessionmaker[Session]) -> None:
    refused = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    with pytest.raises(OperationalError) as down:
        refused.connect()
    assert is_transient(down.value)
    with sessions() as session, pytest.raises(Exception) as broken:
        session.execute(text("SELECT no_such_column FROM miners"))
    assert not is_transient(broken.value)


def test_the_sqlite_writer_gate_waits_for_a_writer_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "prism.db"
    engine = make_engine(f"sqlite:///{path}")
    gate = writer_gate(engine)
    assert writer_gate(engine) is gate  # one gate per engine
    lock_file = Path(f"{path}.writer-lock")
    assert lock_file.exists()
    # Another server process holds the gate's file lock until told to let go.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.readline()\n",
            str(lock_file),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    entered = threading.Event()

    def write() -> None:
        with gate:
            entered.set()

    try:
        assert holder.stdout.readline().strip() == "held"
        thread = threading.Thread(target=write)
        thread.start()
        assert not entered.wait(0.5)  # queued behind the other process's writer
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert entered.wait(30)  # and in as soon as it let go
        thread.join(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    engine.dispose()


def test_writer_gates_of_other_databases_need_no_file() -> None:
    assert not isinstance(writer_gate(make_engine("sqlite://")), nullcontext)  # in memory: the thread lock
    assert isinstance(writer_gate(create_engine("postgresql+psycopg://prism@127.0.0.1/none")), nullcontext)
