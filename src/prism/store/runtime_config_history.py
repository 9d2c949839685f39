"""Who changed the runtime config, when, why, and which values moved.

Every version is kept (`runtime_config` rows are never updated but for the active flag), so the
history is the rows in order, each compared with the one before; the first is compared with
the defaults, which is what ran before any row existed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prism.runtime_config import DEFAULT_RUNTIME_CONFIG
from prism.store.models import RuntimeConfigRow


@dataclass(frozen=True, slots=True)
class Change:
    key: str  # dotted path, e.g. "gpu.official_profile.gpu_count"
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: int
    created_at: datetime
    created_by: str
    comment: str | None
    active: bool
    changes: tuple[Change, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "comment": self.comment,
            "active": self.active,
            "changes": [change.to_json() for change in self.changes],
        }


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """Every leaf whose value differs, added or removed (a missing leaf reads as None)."""
    old, new = dict(_leaves(before)), dict(_leaves(after))
    return tuple(
        Change(key, old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    )


def runtime_config_history(session: Session, *, limit: int = 100) -> list[HistoryEntry]:
    """Newest first, at most `limit` versions, each with what it changed."""
    rows = session.scalars(select(RuntimeConfigRow).order_by(RuntimeConfigRow.version.asc())).all()
    previous: Mapping[str, Any] = DEFAULT_RUNTIME_CONFIG.model_dump(mode="json")
    entries = []
    for row in rows:
        entries.append(
            HistoryEntry(
                row.version, row.created_at, row.created_by, row.comment, row.active, diff(previous, row.document)
            )
        )
        previous = row.document
    return entries[::-1][:limit]
