"""`get_weights`: answered from a small in-memory snapshot so it is fast and never fails.

The snapshot is recomputed from stored results at most every `ttl` seconds. If recomputing fails
(database down, invalid runtime config), the last good snapshot is served, or empty weights with
the problem named in `metadata` — Platform must always get an answer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.scoring.ranking import compute_weights
from prism.store.base import utcnow
from prism.store.runtime_configs import load_runtime_config
from prism.store.scores import eligible_results, latest_scored_epoch, owners
from prism.store.submissions import epoch_at

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


@dataclass
class WeightsCache:
    settings: Settings
    sessions: sessionmaker[Session]
    ttl: float = 5.0
    _snapshot: WeightsSnapshot | None = None
    _at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invalidate(self) -> None:
        self._at = 0.0

    def get(self) -> WeightsSnapshot:
        if self._snapshot is not None and time.monotonic() - self._at < self.ttl:
            return self._snapshot
        with self._lock:
            if self._snapshot is not None and time.monotonic() - self._at < self.ttl:
                return self._snapshot
            try:
                with self.sessions() as session:
                    self._snapshot = compute_snapshot(session, self.settings)
                self._at = time.monotonic()
            except Exception as exc:
                log.error("weights snapshot failed, serving the last good one: %s", type(exc).__name__)
                if self._snapshot is None:
                    return WeightsSnapshot(
                        challenge_slug=self.settings.challenge_slug,
                        epoch=epoch_at(datetime.now(UTC), self.settings.epoch_seconds),
                        weights={},
                        metadata={"error": f"weights unavailable: {type(exc).__name__}", "dry_run": True},
                        computed_at=utcnow(),
                    )
            return self._snapshot
