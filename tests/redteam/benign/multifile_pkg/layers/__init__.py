# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Building blocks of the hybrid model."""

from .attention import CausalSelfAttention
from .mixer import ShortConvMixer

__all__ = ["CausalSelfAttention", "ShortConvMixer"]
