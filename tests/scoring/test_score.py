from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prism.scoring import final_score, leaderboard_key


def test_anchors() -> None:
    assert final_score(8.0) == pytest.approx(1 / 256)
    assert final_score(1.0) == 0.5
    assert final_score(0.0) == 1.0


@given(st.floats(min_value=0, max_value=64), st.floats(min_value=0, max_value=64))
def test_lower_bits_per_byte_scores_higher(a: float, b: float) -> None:
    if a < b and final_score(a) != final_score(b):
        assert final_score(a) > final_score(b)
    assert (final_score(a) >= final_score(b)) == (a <= b) or final_score(a) == final_score(b)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.1])
def test_non_finite_or_negative_is_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        final_score(bad)
    with pytest.raises(TypeError):
        final_score(True)


def test_ties_go_to_the_earliest_submission() -> None:
    rows = [(final_score(2.0), 30.0, "late"), (final_score(2.0), 10.0, "early"), (final_score(1.5), 50.0, "best")]
    assert [r[2] for r in sorted(rows, key=lambda r: leaderboard_key(*r))] == ["best", "early", "late"]
