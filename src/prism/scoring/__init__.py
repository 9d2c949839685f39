"""Manifests to scores, leaderboard order, ownership, weights. Knows nothing of sandboxes."""

from prism.scoring.score import final_score, leaderboard_key

__all__ = ["final_score", "leaderboard_key"]
