# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Hyper-parameters shared by every layer of the hybrid model."""

from dataclasses import dataclass


@dataclass(frozen=True)
class HybridSettings:
    d_model: int = 192
    n_heads: int = 4
    n_layers: int = 4
    conv_kernel: int = 4
    dropout: float = 0.05
    attention_every: int = 2
