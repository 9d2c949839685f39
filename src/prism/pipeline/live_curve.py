"""Store the recorder's live progress points while a phase runs, off the sandbox's read loop.

The backend hands each verified point to `LiveCurveWriter.put` from inside its stdout loop, which
must never wait on the database (a slow write would stall the recorder's pipe), so points go on a
queue and one thread writes them in small batches. Progress is advisory: a write that fails is
logged and the points dropped; the phase goes on, and its signed report is what counts.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from prism.evaluation.progress import ProgressPoint
from prism.store.db import DatabaseUnavailable, run_write
from prism.store.live_curve import LiveCurvePoint, add_live_points, reset_live_curve

log = logging.getLogger(__name__)
T = TypeVar("T")
_STOP = None
# How long a finished phase waits for its last points to be written: a fault, not a race, if hit.
FLUSH_SECONDS = 30.0


class LiveCurveWriter:
    """`with LiveCurveWriter(...) as writer: run_train(..., on_progress=writer.put)`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        submission_id: str,
        phase: str,
        *,
        attempt: int,
        budget_seconds: float = 10.0,
    ) -> None:
        self.sessions = sessions
        self.submission_id = submission_id
        self.phase = phase
        self.attempt = attempt
        self.budget_seconds = budget_seconds
        self.stored = 0
        self._queue: queue.SimpleQueue[ProgressPoint | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name=f"live-curve-{submission_id[:12]}", daemon=True)

    def __enter__(self) -> LiveCurveWriter:
        # The previous attempt's points would read as this one's: they go before this run starts.
        self._write(lambda session: reset_live_curve(session, self.submission_id, self.phase))
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=FLUSH_SECONDS)
        if self._thread.is_alive():
            log.warning("live curve of %s: the last points were not written in time", self.submission_id)

    def put(self, point: ProgressPoint) -> None:
        """Called from the sandbox's read loop: never blocks."""
        self._queue.put(point)

    def _drain(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get())
            stopping = _STOP in batch
            points = [p for p in batch if p is not None]
            if points:
                self.stored += self._store(points)

    def _store(self, points: list[ProgressPoint]) -> int:
        rows = [self._row(point) for point in points]
        return self._write(lambda session: add_live_points(session, rows)) or 0

    def _row(self, point: ProgressPoint) -> LiveCurvePoint:
        return LiveCurvePoint(
            submission_id=self.submission_id,
            phase=self.phase,
            seq=point.seq,
            attempt=self.attempt,
            step=point.step,
            steps=point.steps,
            tokens=point.tokens,
            bits_per_byte=point.bits_per_byte,
            mean_bits_per_byte=point.mean_bits_per_byte,
        )

    def _write(self, work: Callable[[Session], T]) -> T | None:
        try:
            return run_write(self.sessions, work, budget_seconds=self.budget_seconds, what="live curve")
        except (DatabaseUnavailable, SQLAlchemyError) as exc:
            log.warning("live curve of %s: points dropped (%s)", self.submission_id, exc)
            return None
