"""Live training progress: the recorder's points on its stdout while a phase runs, read by the host.

The signed phase report (`phase.py`) arrives only when a phase ends, so a miner waiting on a long
training run would see nothing for minutes. The recorder, which alone knows the step, the tokens
seen and the prequential loss, also writes a progress line every few steps:

    PRISM_PHASE_PROGRESS {"phase": "train", "seq": 3, "step": 40, ...} <hmac-sha256>

It goes to the recorder's stdout, which the model's process cannot write to (its output is the
recorder's stderr, see `walls.spawn_jailed`), and carries a MAC under the per-phase report key with
its own context, so a line that is not the recorder's is dropped and no progress line can pass
for a report. At most `MAX_POINTS` lines per phase, each a few hundred bytes: the stream stays
far below the sandbox's output tail. The backends that see stdout while the job runs (bubblewrap,
Docker) hand it to `ProgressTap`, which verifies each line and passes a `ProgressPoint` on.

Progress is advisory: shown as live and unverified. Only the signed report and the loss-curve
artifact it names count for anything. Stdlib only: the harness imports this inside the sandbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TextIO

PROGRESS_PREFIX = "PRISM_PHASE_PROGRESS "
MAX_POINTS = 200
# A longer line is not the recorder's (its lines are ~250 bytes): dropped without parsing.
MAX_LINE_BYTES = 1024
_MAC_CONTEXT = b"prism.phase-progress.v1\n"
LN2 = math.log(2)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressPoint:
    """One live point: after `step` of `steps` training steps, `tokens` bytes predicted so far.

    `bits_per_byte` is the mean prequential loss of the steps since the previous point;
    `mean_bits_per_byte` is that of every step so far (what the final figure will be, if the run
    ends here).
    """

    phase: str
    seq: int
    step: int
    steps: int
    tokens: int
    bits_per_byte: float
    mean_bits_per_byte: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def progress_mac(key: bytes, phase: str, body: str) -> str:
    return hmac.new(key, _MAC_CONTEXT + phase.encode() + b"\n" + body.encode(), hashlib.sha256).hexdigest()


def progress_line(key: bytes, point: ProgressPoint) -> str:
    body = json.dumps(point.to_json(), sort_keys=True, allow_nan=False)
    return f"{PROGRESS_PREFIX}{body} {progress_mac(key, point.phase, body)}"


def stride_for(steps: int, max_points: int = MAX_POINTS) -> int:
    """Steps between two points, so a phase of `steps` steps emits at most `max_points`."""
    return max(1, -(-steps // max(1, max_points)))


class ProgressEmitter:
    """The recorder's side: a point every `stride_for(steps)` steps and after the last one."""

    def __init__(self, key: bytes, phase: str, stream: TextIO, *, max_points: int = MAX_POINTS) -> None:
        self.key = key
        self.phase = phase
        self.stream = stream
        self.max_points = max_points
        self.steps = 0
        self.stride = 1
        self.emitted = 0
        self._tokens = 0
        self._total_nats = 0.0
        self._window_nats = 0.0
        self._window_steps = 0

    def start(self, steps: int) -> None:
        self.steps = steps
        self.stride = stride_for(steps, self.max_points)

    def record(self, step: int, loss_nats: float, tokens: int) -> None:
        """The loss of step `step` (0-based), already fixed by the recorder, and its token count."""
        self._tokens += tokens
        self._total_nats += loss_nats * tokens
        self._window_nats += loss_nats
        self._window_steps += 1
        done = step + 1
        if done % self.stride == 0 or done == self.steps:
            self._emit(done)

    def _emit(self, done: int) -> None:
        if self.emitted >= self.max_points or not self._window_steps or not self._tokens:
            return
        point = ProgressPoint(
            phase=self.phase,
            seq=self.emitted,
            step=done,
            steps=self.steps,
            tokens=self._tokens,
            bits_per_byte=round(self._window_nats / self._window_steps / LN2, 6),
            mean_bits_per_byte=round(self._total_nats / self._tokens / LN2, 6),
        )
        if not (math.isfinite(point.bits_per_byte) and math.isfinite(point.mean_bits_per_byte)):
            return  # a non-finite loss ends the phase anyway; the report says why
        self.emitted += 1
        self._window_nats, self._window_steps = 0.0, 0
        self.stream.write(progress_line(self.key, point) + "\n")
        self.stream.flush()


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _is_figure(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def parse_progress_line(key: bytes, phase: str, line: str) -> ProgressPoint | None:
    """The point a line carries if it is the recorder's (valid MAC, well formed), else None."""
    if not line.startswith(PROGRESS_PREFIX) or len(line) > MAX_LINE_BYTES:
        return None
    body, _, mac = line[len(PROGRESS_PREFIX) :].rstrip("\r\n").rpartition(" ")
    if not key or not body or not hmac.compare_digest(progress_mac(key, phase, body), mac):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("phase") != phase:
        return None
    counts, figures = ("seq", "step", "steps", "tokens"), ("bits_per_byte", "mean_bits_per_byte")
    if not all(_is_count(data.get(n)) for n in counts) or not all(_is_figure(data.get(n)) for n in figures):
        return None
    return ProgressPoint(
        phase=phase,
        seq=data["seq"],
        step=data["step"],
        steps=data["steps"],
        tokens=data["tokens"],
        bits_per_byte=float(data["bits_per_byte"]),
        mean_bits_per_byte=float(data["mean_bits_per_byte"]),
    )


class Lines:
    """Whole lines out of a stream's chunks as they arrive: a partial line is held until its end
    comes, and one longer than `max_bytes` is dropped, up to and including its end."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._pending = bytearray()
        self._skipping = False

    def feed(self, chunk: bytes) -> list[bytes]:
        self._pending += chunk
        lines: list[bytes] = []
        while True:
            end = self._pending.find(b"\n")
            if end < 0:
                if len(self._pending) > self.max_bytes:
                    self._pending.clear()
                    self._skipping = True
                return lines
            raw = bytes(self._pending[:end])
            del self._pending[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            lines.append(raw)


class ProgressTap:
    """The host's side: fed raw stdout chunks as they arrive, passes on each verified new point.

    Runs inside the backend's read loop, so it only splits, checks and hands over: `on_point`
    must not block (the pipeline queues the point for a writer thread). A point must advance the
    sequence and the step; at most `max_points` are passed on; a partial line is held until its
    end arrives, and an overlong one is skipped to its end.
    """

    def __init__(
        self, key: bytes, phase: str, on_point: Callable[[ProgressPoint], None], *, max_points: int = MAX_POINTS
    ) -> None:
        self.key = key
        self.phase = phase
        self.on_point = on_point
        self.max_points = max_points
        self.points = 0
        self._last: ProgressPoint | None = None
        self._lines = Lines(MAX_LINE_BYTES)

    def __call__(self, chunk: bytes) -> None:
        for raw in self._lines.feed(chunk):
            self._line(raw)

    def _line(self, raw: bytes) -> None:
        if self.points >= self.max_points or not raw.startswith(PROGRESS_PREFIX.encode()):
            return
        point = parse_progress_line(self.key, self.phase, raw.decode("utf-8", errors="replace"))
        if point is None:
            return
        last = self._last
        if last is not None and (point.seq <= last.seq or point.step <= last.step or point.tokens < last.tokens):
            return
        self._last = point
        self.points += 1
        self.on_point(point)
