"""Every table module, imported once, so `metadata` is the whole schema (Alembic compares with it)."""

from __future__ import annotations

from prism.store import fingerprints, live_curve, models, validators, weights_generation
from prism.store.base import Base

metadata = Base.metadata

__all__ = ["fingerprints", "live_curve", "metadata", "models", "validators", "weights_generation"]
