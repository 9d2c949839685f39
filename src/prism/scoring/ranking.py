"""Leaderboard order and per-hotkey weights from validated results. Pure functions.

Rules, one place each:
- a hotkey is represented by its best result only (never a sum over its submissions);
- ties go to the earliest submission;
- weights split each architecture family's value between its owner (the first discoverer) and
  the best implementation on it (`RewardPolicy.owner_share`, default 60/40), then normalize;
- an owner without a completed, eligible result in its family gets no owner share: it flows to
  the family's best implementation, so weight never goes to a hotkey that is not competing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from prism.runtime_config import RewardPolicy


@dataclass(frozen=True, slots=True)
class ScoredResult:
    submission_id: str
    hotkey: str
    final_score: float
    bits_per_byte: float
    architecture_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    rank: int
    result: ScoredResult


def _order_key(result: ScoredResult) -> tuple[float, datetime, str]:
    return (-result.final_score, result.created_at, result.submission_id)


def best_per_hotkey(results: Sequence[ScoredResult]) -> list[ScoredResult]:
    best: dict[str, ScoredResult] = {}
    for result in sorted(results, key=_order_key):
        best.setdefault(result.hotkey, result)
    return sorted(best.values(), key=_order_key)


def leaderboard(results: Sequence[ScoredResult]) -> list[LeaderboardRow]:
    return [LeaderboardRow(rank, result) for rank, result in enumerate(best_per_hotkey(results), start=1)]


def compute_weights(
    results: Sequence[ScoredResult], *, owners: Mapping[str, str], policy: RewardPolicy
) -> dict[str, float]:
    """Normalized weight per hotkey. `owners` maps graph hash -> owner hotkey."""
    best = best_per_hotkey(results)
    families: dict[str, list[ScoredResult]] = {}
    for result in best:
        families.setdefault(result.architecture_hash, []).append(result)
    # Who has any result in which family, once: testing each family by scanning every result
    # made this quadratic (seconds at 10k results).
    competing = {(r.hotkey, r.architecture_hash) for r in results}
    raw: dict[str, float] = {}
    for graph_hash, members in families.items():
        leader = members[0]  # `best` is already in leaderboard order
        value = max(leader.final_score, 0.0)
        owner = owners.get(graph_hash)
        owner_competes = owner is not None and (owner, graph_hash) in competing
        if owner is not None and owner_competes:
            raw[owner] = raw.get(owner, 0.0) + policy.owner_share * value
            raw[leader.hotkey] = raw.get(leader.hotkey, 0.0) + policy.implementation_share * value
        else:
            raw[leader.hotkey] = raw.get(leader.hotkey, 0.0) + value
    total = sum(raw.values())
    if total <= 0:
        return {}
    return {hotkey: weight / total for hotkey, weight in sorted(raw.items()) if weight > 0}
