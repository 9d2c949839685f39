"""`get_weights`: served from memory, never waiting on the database.

A background thread keeps the snapshot current: every `weights_refresh_seconds` it asks SQLite
whether anyone committed since the last snapshot (`PRAGMA data_version`, free at any size) and,
if so or on PostgreSQL, reads a change marker (the weights generation, one row bumped by every
transaction that writes what the weights read, and the current epoch: O(1) at any size) and,
only when that changed, recomputes the weights (O(n log n) in the scored results) and renders
the answer once. A reader takes
the rendered bytes as they are: no database work, no lock, no recompute.
If a refresh fails (database down, hung past its statement timeout, invalid runtime config),
the last good snapshot keeps being served and its metadata names the problem; before the first
snapshot exists the answer is empty weights with the reason.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.errors import PrismError
from prism.scoring.ranking import compute_weights
from prism.store.base import utcnow
from prism.store.runtime_configs import load_runtime_config
from prism.store.scores import eligible_results, latest_scored_epoch, owners
from prism.store.submissions import epoch_at
from prism.store.weights_generation import read_generation

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WeightsSnapshot:
    challenge_slug: str
    epoch: int
    weights: dict[str, float]
    metadata: dict[str, Any]
    computed_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "challenge_slug": self.challenge_slug,
            "epoch": self.epoch,
            "weights": self.weights,
            "metadata": self.metadata,
            "computed_at": self.computed_at.isoformat(),
        }

    def render(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


def compute_snapshot(session: Session, settings: Settings) -> WeightsSnapshot:
    now = utcnow()
    current = epoch_at(now, settings.epoch_seconds)
    # At an epoch boundary the new epoch has no results yet: keep weighting the latest scored one.
    scored_epoch = latest_scored_epoch(session, at_or_before=current)
    results = eligible_results(session, epoch=scored_epoch) if scored_epoch is not None else []
    policy = load_runtime_config(session).config.rewards
    weights = compute_weights(results, owners=owners(session), policy=policy)
    return WeightsSnapshot(
        challenge_slug=settings.challenge_slug,
        epoch=current,
        weights=weights,
        metadata={
            "scored_epoch": scored_epoch,
            "submissions_considered": len(results),
            "owner_share": policy.owner_share,
            "dry_run": True,
        },
        computed_at=now,
    )


@dataclass(frozen=True, slots=True)
class Marker:
    generation: int
    epoch: int


def change_marker(session: Session, settings: Settings) -> Marker:
    """Changes whenever the weights could, and only then (intake must not cause recomputes).

    Weights read completed submissions' evaluations, family owners, the active reward policy
    and the epoch. Every write of the first three bumps the weights generation in its own
    transaction (`prism.store.weights_generation`); the epoch comes from the clock. One
    primary-key lookup, whatever the number of results.
    """
    return Marker(read_generation(session), epoch_at(utcnow(), settings.epoch_seconds))


def _empty(settings: Settings, reason: str) -> WeightsSnapshot:
    return WeightsSnapshot(
        challenge_slug=settings.challenge_slug,
        epoch=epoch_at(datetime.now(UTC), settings.epoch_seconds),
        weights={},
        metadata={"error": reason, "dry_run": True},
        computed_at=utcnow(),
    )


def _refresh_loop(ref: weakref.ReferenceType[WeightsCache], stop: threading.Event, wake: threading.Event) -> None:
    # Holds the cache weakly: an app that is gone (tests make many) ends its refresher.
    while not stop.is_set():
        cache = ref()
        if cache is None or stop.is_set():
            return
        cache.refresh()
        interval = cache.settings.weights_refresh_seconds
        del cache
        wake.wait(interval)
        wake.clear()


# Every cache whose refresher was started, so a process (or a test run) can stop them all.
_STARTED: list[weakref.ref[WeightsCache]] = []


def stop_all(*, wait: float = 5.0) -> None:
    """Stop every refresher this process started."""
    while _STARTED:
        cache = _STARTED.pop()()
        if cache is not None:
            cache.stop(wait=wait)


@dataclass
class WeightsCache:
    settings: Settings
    sessions: sessionmaker[Session]
    _snapshot: WeightsSnapshot | None = None
    _body: bytes = b""
    _marker: Marker | None = None
    _problem: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watch: sqlite3.Connection | None = None
    _seen_version: int | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=_refresh_loop, args=(weakref.ref(self), self._stop, self._wake), name="weights", daemon=True
            )
            self._thread.start()
            _STARTED.append(weakref.ref(self))

    def stop(self, *, wait: float = 5.0) -> None:
        """Stop the refresher; waits (bounded) for a refresh in flight to end, so nothing reads
        the database after the app has shut down."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=wait)
        if self._watch is not None and (thread is None or not thread.is_alive()):
            self._watch.close()
            self._watch = None

    def invalidate(self) -> None:
        """Something changed here (an operator action): refresh now rather than at the next tick."""
        self._marker = None
        self._wake.set()

    def _data_version(self) -> int | None:
        """SQLite's `PRAGMA data_version` on a read-only connection of the refresher's own: it
        changes whenever another connection (any process) commits, and costs nothing at any
        size. None elsewhere (PostgreSQL, an in-memory database)."""
        if self._watch is None:
            bind = self.sessions.kw.get("bind")
            database = bind.url.database if bind is not None and bind.dialect.name == "sqlite" else None
            if not database or database == ":memory:":
                return None
            self._watch = sqlite3.connect(f"file:{Path(database).resolve()}?mode=ro", uri=True, check_same_thread=False)
        row = self._watch.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def _unchanged(self, version: int | None) -> bool:
        """Nobody committed anything since the last snapshot and the epoch is the same: not even
        the marker's one-row read need run."""
        marker = self._marker
        return (
            version is not None
            and version == self._seen_version
            and self._snapshot is not None
            and self._problem is None
            and marker is not None
            and marker.epoch == epoch_at(utcnow(), self.settings.epoch_seconds)
        )

    def refresh(self) -> bool:
        """One background refresh; True when a new snapshot was made. Never raises."""
        try:
            version = self._data_version()  # read first: a commit after it shows next time
            if self._unchanged(version):
                return False
            with self.sessions() as session:
                marker = change_marker(session, self.settings)
                if marker == self._marker and self._snapshot is not None:
                    self._problem, self._seen_version = None, version
                    return False
                snapshot = compute_snapshot(session, self.settings)
        except (SQLAlchemyError, PrismError, OSError, sqlite3.Error) as exc:
            self._problem = f"weights refresh failed: {type(exc).__name__}"
            log.error("weights refresh failed, serving the last good snapshot: %s", type(exc).__name__)
            return False
        body = snapshot.render()
        # One assignment each, read without a lock: a reader sees the old or the new, never a mix.
        self._snapshot, self._body, self._marker, self._problem = snapshot, body, marker, None
        self._seen_version = version
        return True

    def get(self) -> WeightsSnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            self.start()
            return _empty(self.settings, self._problem or "weights are being computed (the service just started)")
        if self._problem is not None:
            metadata = {**snapshot.metadata, "stale": True, "error": self._problem}
            return WeightsSnapshot(
                snapshot.challenge_slug, snapshot.epoch, snapshot.weights, metadata, snapshot.computed_at
            )
        return snapshot

    def body(self) -> bytes:
        """The answer as rendered once per snapshot (what the route sends)."""
        snapshot = self._snapshot
        if snapshot is None or self._problem is not None:
            return self.get().render()
        return self._body
