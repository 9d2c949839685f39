"""The score of a validated run: a documented, strictly monotone transform of bits per byte.

    final_score(bpb) = 2 ** (-bpb)

It is the geometric-mean probability the model gave each held-out byte: 1/256 (about 0.0039) for
a uniform guess at 8.0 bits per byte, 0.5 at 1.0, 1.0 for a perfect predictor. Lower bits per
byte always gives a strictly higher score, and the score has a meaning a miner can check by hand.
Ties (equal scores) go to the earliest submission: `leaderboard_key` sorts by score descending,
then submission time ascending, then id, so the order is total and deterministic.
"""

from __future__ import annotations

import math


def final_score(bits_per_byte: float) -> float:
    if isinstance(bits_per_byte, bool) or not isinstance(bits_per_byte, int | float):
        raise TypeError("bits_per_byte must be a number")
    if not math.isfinite(bits_per_byte) or bits_per_byte < 0:
        raise ValueError(f"bits_per_byte must be finite and >= 0, got {bits_per_byte!r}")
    return float(2.0 ** (-float(bits_per_byte)))


def leaderboard_key(score: float, submitted_at: float, submission_id: str) -> tuple[float, float, str]:
    """Sort key: higher score first; on a tie, the earlier submission first."""
    return (-score, submitted_at, submission_id)
