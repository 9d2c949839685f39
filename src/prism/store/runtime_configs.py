"""Versioned runtime-config rows: one active; the active document is validated on every read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from prism.runtime_config import DEFAULT_RUNTIME_CONFIG, RuntimeConfig, parse_runtime_config
from prism.store.lifecycle import audit
from prism.store.models import RuntimeConfigRow
from prism.store.weights_generation import weights_changed


@dataclass(frozen=True, slots=True)
class ActiveRuntimeConfig:
    config: RuntimeConfig
    version: int | None  # None: no row, the defaults apply


def active_row(session: Session) -> RuntimeConfigRow | None:
    return session.scalar(
        select(RuntimeConfigRow).where(RuntimeConfigRow.active.is_(True)).order_by(RuntimeConfigRow.version.desc())
    )


def load_runtime_config(session: Session) -> ActiveRuntimeConfig:
    """The active config, validated. An invalid stored row raises `ConfigError` (fail closed)."""
    row = active_row(session)
    if row is None:
        return ActiveRuntimeConfig(DEFAULT_RUNTIME_CONFIG, None)
    return ActiveRuntimeConfig(parse_runtime_config(row.document), row.version)


def set_runtime_config(session: Session, document: dict[str, Any], *, actor: str, comment: str | None = None) -> int:
    """Validate, store as a new version and make it the only active one. Returns the version."""
    config = parse_runtime_config(document)
    session.execute(update(RuntimeConfigRow).where(RuntimeConfigRow.active.is_(True)).values(active=False))
    row = RuntimeConfigRow(document=config.model_dump(mode="json"), active=True, created_by=actor, comment=comment)
    session.add(row)
    session.flush()
    weights_changed(session)  # the reward policy is part of the runtime config
    audit(session, submission_id=None, actor=actor, action="runtime_config.set", data={"version": row.version})
    return row.version
