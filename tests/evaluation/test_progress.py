"""Live progress lines: bounded, the recorder's own (MAC'd apart from the report), read while they arrive."""

from __future__ import annotations

import io
import json
import math

import pytest

from prism.evaluation.phase import RESULT_PREFIX, report_line, verify_report_line
from prism.evaluation.progress import (
    MAX_LINE_BYTES,
    MAX_POINTS,
    PROGRESS_PREFIX,
    ProgressEmitter,
    ProgressPoint,
    ProgressTap,
    parse_progress_line,
    progress_line,
)

KEY = bytes(range(32))


def _emit(steps: int, *, loss: float = math.log(256), tokens: int = 256, max_points: int = MAX_POINTS) -> list[str]:
    stream = io.StringIO()
    emitter = ProgressEmitter(KEY, "train", stream, max_points=max_points)
    emitter.start(steps)
    for step in range(steps):
        emitter.record(step, loss * (1 - step / (2 * steps)), tokens)
    return stream.getvalue().splitlines()


def _tap(lines: list[str] | bytes, *, chunk: int = 7, key: bytes = KEY) -> list[ProgressPoint]:
    seen: list[ProgressPoint] = []
    tap = ProgressTap(key, "train", seen.append)
    data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
    for start in range(0, len(data), chunk):  # split anywhere: lines arrive in pieces
        tap(data[start : start + chunk])
    return seen


@pytest.mark.parametrize(("steps", "expected"), [(1, 1), (32, 32), (200, 200), (201, 101), (10_000, 200)])
def test_a_phase_emits_at_most_max_points_and_always_its_last_step(steps: int, expected: int) -> None:
    lines = _emit(steps)
    assert len(lines) == expected <= MAX_POINTS
    points = _tap(lines)
    assert [p.seq for p in points] == list(range(expected))
    assert points[-1].step == steps and points[-1].tokens == 256 * steps
    assert all(len(line.encode()) < 400 for line in lines)  # 200 of them stay far below the output tail


def test_points_carry_the_window_and_the_running_figure_in_bits_per_byte() -> None:
    points = _tap(_emit(4, max_points=2))
    assert [p.step for p in points] == [2, 4]
    # Losses ln(256) * (1, 7/8, 3/4, 5/8): 8 bits per byte, falling by one bit per step.
    assert points[0].bits_per_byte == pytest.approx(7.5) and points[0].mean_bits_per_byte == pytest.approx(7.5)
    assert points[1].bits_per_byte == pytest.approx(5.5) and points[1].mean_bits_per_byte == pytest.approx(6.5)


def test_a_line_under_another_key_or_edited_is_dropped() -> None:
    lines = _emit(5)
    assert _tap(lines, key=bytes(32)) == []
    body, _, mac = lines[0][len(PROGRESS_PREFIX) :].rpartition(" ")
    edited = json.dumps({**json.loads(body), "bits_per_byte": 0.01}, sort_keys=True)
    assert parse_progress_line(KEY, "train", f"{PROGRESS_PREFIX}{edited} {mac}") is None
    assert parse_progress_line(KEY, "heldout", lines[0]) is None  # the phase is under the MAC
    assert parse_progress_line(KEY, "train", lines[0]) is not None


def test_a_progress_line_is_no_report_and_a_report_is_no_progress_line() -> None:
    line = _emit(1)[0]
    body = line[len(PROGRESS_PREFIX) :].rpartition(" ")[0]
    forged_report = RESULT_PREFIX + line[len(PROGRESS_PREFIX) :]
    assert verify_report_line(KEY, "train", forged_report) is None
    report = report_line(KEY, "train", body)
    assert parse_progress_line(KEY, "train", PROGRESS_PREFIX + report[len(RESULT_PREFIX) :]) is None


def test_the_tap_keeps_order_skips_overlong_lines_and_caps_the_count() -> None:
    lines = _emit(8)
    noise = ["model says hi", "x" * (3 * MAX_LINE_BYTES), PROGRESS_PREFIX + "{} 00"]
    points = _tap([lines[0], *noise, lines[2], lines[1], lines[2], lines[3]])
    assert [p.seq for p in points] == [0, 2, 3]  # a replayed or older point is not passed on twice
    seen: list[ProgressPoint] = []
    tap = ProgressTap(KEY, "train", seen.append, max_points=2)
    tap(("\n".join(lines) + "\n").encode())
    assert len(seen) == 2


def test_a_non_finite_or_negative_figure_is_refused() -> None:
    point = ProgressPoint(phase="train", seq=0, step=1, steps=1, tokens=1, bits_per_byte=-1.0, mean_bits_per_byte=1.0)
    assert parse_progress_line(KEY, "train", progress_line(KEY, point)) is None
    stream = io.StringIO()
    emitter = ProgressEmitter(KEY, "train", stream)
    emitter.start(1)
    emitter.record(0, math.nan, 256)
    assert stream.getvalue() == ""
