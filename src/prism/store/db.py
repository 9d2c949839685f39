"""Engines and sessions. SQLite gets WAL, foreign keys and a busy timeout on every connection.

The database boundary lives here too: which errors are transient (a busy write lock, a server
that is down, restarting or too slow), the write transaction that takes SQLite's lock up front,
and the retry with back-off that every caller uses, so a busy lock never fails a submission.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from prism.errors import PrismError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Connect and statement timeouts (seconds): a hung server is an error we can answer, not a wait.
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_SECONDS = 30
# How often a unit of work that lost an insert race to another writer is run again.
CONFLICT_RETRIES = 3
SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


class DatabaseUnavailable(PrismError):
    """The database refused, timed out or stayed locked past the retry budget; try again later."""


def is_transient(exc: BaseException) -> bool:
    """True for failures that a later attempt can succeed at (never for a bad value or a bug).

    OperationalError covers SQLite's "database is locked", a refused or dropped connection and,
    on PostgreSQL, statement timeouts, deadlocks and serialization failures.
    """
    if isinstance(exc, DatabaseUnavailable | sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc.orig, sqlite3.OperationalError):
            # sqlite3 also raises OperationalError for bad SQL (a bug, never retried).
            message = str(exc.orig).lower()
            return any(word in message for word in SQLITE_TRANSIENT)
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return False


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would defer BEGIN; we issue BEGIN IMMEDIATE ourselves
    # when claiming work, so let SQLAlchemy see every statement.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # `immediate=True` takes the write lock up front: a claim cannot lose a race after reading.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")


def _postgres_statement_timeout(seconds: float) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Server-side bound on every statement: a lock wait or a runaway query ends as an error.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(seconds * 1000)}")
        dbapi_connection.commit()

    return on_connect


def make_engine(
    url: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
    pool_timeout: float = 10.0,
) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args["connect_timeout"] = max(1, int(connect_timeout))
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
    )
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_statement_timeout(statement_timeout))
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def backoff(attempt: int, *, base: float = 0.05, cap: float = 2.0) -> float:
    return float(min(cap, base * 2**attempt))


def _begin_write(session: Session, *, budget_seconds: float) -> None:
    """BEGIN IMMEDIATE on SQLite (plain BEGIN elsewhere), retried with back-off while it is busy."""
    deadline = time.monotonic() + budget_seconds
    attempt = 0
    while True:
        try:
            session.connection(execution_options={"immediate": True})
            return
        except sa_exc.SQLAlchemyError as exc:
            session.rollback()
            if not is_transient(exc) or time.monotonic() >= deadline:
                raise
            log.info(
                "write lock busy or database unreachable; retrying (%s)",
                type(getattr(exc, "orig", None) or exc).__name__,
            )
            time.sleep(backoff(attempt))
            attempt += 1


@contextmanager
def write_session(sessions: sessionmaker[Session], *, lock_budget_seconds: float = 120.0) -> Iterator[Session]:
    """A transaction that holds SQLite's write lock from its first statement.

    Use it for every read-then-write: a deferred transaction that read first cannot upgrade its
    lock while another writer commits, and SQLite then fails at once (the busy timeout does not
    apply to an upgrade). Taking the lock at BEGIN makes it wait its turn instead. PostgreSQL
    ignores the option. Commits on success, rolls back on any error.
    """
    with sessions() as session:
        _begin_write(session, budget_seconds=lock_budget_seconds)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def retry_transient(call: Callable[[], T], *, budget_seconds: float = 120.0, what: str = "database work") -> T:
    """Run `call` again, with back-off, while it fails transiently; DatabaseUnavailable after the budget."""
    deadline = time.monotonic() + budget_seconds
    attempt = 0
    while True:
        try:
            return call()
        except sa_exc.SQLAlchemyError as exc:
            if not is_transient(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseUnavailable(f"{what}: the database stayed unavailable for {budget_seconds:.0f}s") from exc
            log.info(
                "%s hit a transient database error, retrying: %s",
                what,
                type(getattr(exc, "orig", None) or exc).__name__,
            )
            time.sleep(backoff(attempt, cap=5.0))
            attempt += 1


def run_write(
    sessions: sessionmaker[Session], work: Callable[[Session], T], *, budget_seconds: float = 120.0, what: str = "write"
) -> T:
    """`work(session)` in a write_session, the whole unit retried on a transient failure.

    `work` must be safe to repeat from the start (it runs in a fresh transaction each time).
    """

    def once() -> T:
        with write_session(sessions, lock_budget_seconds=budget_seconds) as session:
            return work(session)

    conflicts = 0
    while True:
        try:
            return retry_transient(once, budget_seconds=budget_seconds, what=what)
        except sa_exc.IntegrityError:
            # On PostgreSQL two workers can insert the same row (e.g. a prior's fingerprint)
            # at once; the loser's unit, run again, finds the row and goes on. A conflict that
            # repeats is no race but a bug: it is raised.
            conflicts += 1
            if conflicts > CONFLICT_RETRIES:
                raise
            log.info("%s lost an insert race, running it again", what)
            time.sleep(backoff(conflicts))


class _WriterGate:
    """A thread lock, then (for a database file) an exclusive `flock` on a file beside it.

    The thread lock orders this process's writers; the file lock orders the writers of every
    process that takes it (the `prism serve --workers N` processes), and the kernel hands it to
    the next waiter the moment it is released. Without a lock file (a directory we cannot write
    to, which SQLite could not use for its journal anyway) the thread lock alone is kept."""

    def __init__(self, lock_path: Path | None) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        if lock_path is not None:
            try:
                self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                log.warning("no SQLite writer lock file (%s); writers of other processes poll", exc.strerror)

    def __enter__(self) -> _WriterGate:
        self._thread_lock.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


_GATES: weakref.WeakKeyDictionary[Engine, _WriterGate] = weakref.WeakKeyDictionary()
_GATES_LOCK = threading.Lock()


def writer_gate(engine: Engine) -> AbstractContextManager[object]:
    """One writer at a time across the processes that take this gate, for SQLite (a no-op elsewhere).

    SQLite admits one writer anyway; waiting on a lock here wakes the next writer the moment
    the last one commits, where SQLite's busy handler polls with growing sleeps (tens of
    milliseconds each under load) — that polling was most of intake's p99, and with several
    server processes it came back between processes until the gate covered them too.
    """
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _GATES_LOCK:
        gate = _GATES.get(engine)
        if gate is None:
            database = engine.url.database
            lock_path = Path(f"{database}.writer-lock") if database and database != ":memory:" else None
            gate = _GATES[engine] = _WriterGate(lock_path)
    return gate
