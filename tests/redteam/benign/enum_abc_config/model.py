# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Configurable MLP-mixer-style byte model built from an enum of activations and an ABC.

Shows the standard-library helpers a submission may lean on: enum, abc, typing, functools,
itertools and collections.
"""

from __future__ import annotations

import abc
import enum
import functools
import itertools
from collections import OrderedDict
from typing import NamedTuple, Protocol

import torch
from torch import nn

from prism.contract import ModelContext


class Activation(enum.Enum):
    GELU = "gelu"
    SILU = "silu"
    RELU2 = "relu2"


class Shape(NamedTuple):
    width: int
    depth: int


class HasWidth(Protocol):
    width: int


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x).square()


def make_activation(kind: Activation) -> nn.Module:
    if kind is Activation.GELU:
        return nn.GELU()
    if kind is Activation.SILU:
        return nn.SiLU()
    return Lambda(relu_squared)


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class MixerBase(nn.Module, abc.ABC):
    @abc.abstractmethod
    def mix(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(x)


class CausalTokenMixer(MixerBase):
    """Mixes along time with a lower-triangular learned matrix (causal by construction)."""

    def __init__(self, seq_len: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(seq_len) + 0.01 * torch.randn(seq_len, seq_len))

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        w = self.weight[:t, :t].tril()
        return torch.einsum("ts,bsd->btd", w, x)


class ChannelMixer(MixerBase):
    def __init__(self, width: int, activation: Activation) -> None:
        super().__init__()
        self.net = nn.Sequential(
            OrderedDict(
                [
                    ("norm", nn.LayerNorm(width)),
                    ("up", nn.Linear(width, 4 * width)),
                    ("act", make_activation(activation)),
                    ("down", nn.Linear(4 * width, width)),
                ]
            )
        )

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ByteMixer(nn.Module):
    def __init__(self, vocab_size: int, seq_len: int, shape: Shape, activation: Activation = Activation.GELU) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, shape.width)
        pairs = ((CausalTokenMixer(seq_len), ChannelMixer(shape.width, activation)) for _ in range(shape.depth))
        self.layers = nn.Sequential(*itertools.chain.from_iterable(pairs))
        self.head = nn.Linear(shape.width, vocab_size)

    @functools.cached_property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.embed(idx)))


@functools.lru_cache(maxsize=None)
def default_shape(budget: int) -> Shape:
    for width, depth in itertools.product((384, 256, 192, 128), (6, 4, 2)):
        if 12 * width * width * depth < budget:
            return Shape(width, depth)
    return Shape(64, 2)


def build_model(ctx: ModelContext) -> nn.Module:
    return ByteMixer(ctx.vocab_size, ctx.seq_len, default_shape(ctx.parameter_cap), Activation.RELU2)
