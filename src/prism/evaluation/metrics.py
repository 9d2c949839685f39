"""Bits per byte from a loss curve: the one formula, used by the harness and re-run by the host.

A curve holds, per step, the mean cross-entropy in nats over that step's predicted bytes and the
number of bytes predicted. Prequential bits per byte is the online code length of the stream:
sum(loss_i * n_i) / (ln 2 * sum(n_i)). The sum is done with `math.fsum` so the host's recomputation
is exact, not merely close.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CURVE_SCHEMA = "prism.loss_curve.v1"
UNIFORM_BPB = 8.0  # log2(256): a uniform guess over bytes


@dataclass(frozen=True, slots=True)
class LossCurve:
    losses_nats: tuple[float, ...]
    tokens: tuple[int, ...]

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)

    def bits_per_byte(self) -> float:
        if not self.tokens or self.total_tokens == 0:
            raise ValueError("an empty loss curve has no bits per byte")
        code_length = math.fsum(loss * count for loss, count in zip(self.losses_nats, self.tokens, strict=True))
        return code_length / (math.log(2) * self.total_tokens)

    def encode(self) -> bytes:
        document = {"schema": CURVE_SCHEMA, "losses_nats": list(self.losses_nats), "tokens": list(self.tokens)}
        return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> LossCurve:
        document: Any = json.loads(data)
        if not isinstance(document, Mapping) or document.get("schema") != CURVE_SCHEMA:
            raise ValueError(f"not a {CURVE_SCHEMA} document")
        losses, tokens = document.get("losses_nats"), document.get("tokens")
        if not isinstance(losses, Sequence) or not isinstance(tokens, Sequence) or len(losses) != len(tokens):
            raise ValueError("losses_nats and tokens must be lists of equal length")
        parsed_losses = tuple(float(x) for x in losses)
        parsed_tokens = tuple(int(x) for x in tokens)
        if not all(math.isfinite(x) and x >= 0 for x in parsed_losses) or any(t <= 0 for t in parsed_tokens):
            raise ValueError("a loss curve holds finite non-negative losses and positive token counts")
        return cls(parsed_losses, parsed_tokens)

    def sha256(self) -> str:
        return hashlib.sha256(self.encode()).hexdigest()
