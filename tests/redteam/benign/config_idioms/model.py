"""A byte model written with the configuration idioms of ordinary PyTorch code.

A module-level default config instance, `functools.partial` of a layer class at top level and as
a default argument, `@torch.jit.ignore` on a debugging helper, and an Enum of activation names
resolved with `getattr(F, name)(x)`: each was once a false rejection.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from prism.contract import ModelContext


@dataclass(frozen=True)
class Config:
    width: int = 64
    depth: int = 2
    dropout: float = 0.0
    activation: str = "gelu"
    widths: tuple[int, ...] = (64, 64)
    extras: list[int] = field(default_factory=list)

    @property
    def ratio(self) -> int:
        return 4

    def hidden(self) -> int:
        return self.width * 4


DEFAULT = Config()
SMALL = Config(width=32, depth=1)
Norm = functools.partial(nn.LayerNorm, eps=1e-6)


def traced(fn):
    """An ordinary decorator: `functools.wraps` with its default fields."""

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        return fn(*args, **kwargs)

    return inner


class Activation(enum.Enum):
    GELU = "gelu"
    RELU = "relu"
    SILU = "silu"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(F, self.value)(x)


class Block(nn.Module):
    def __init__(self, cfg: Config = DEFAULT, norm_layer=partial(nn.LayerNorm, eps=1e-6)) -> None:
        super().__init__()
        self.norm = norm_layer(cfg.width)
        self.up = nn.Linear(cfg.width, cfg.hidden())
        self.down = nn.Linear(cfg.hidden(), cfg.width)
        self.act = Activation(cfg.activation)

    @torch.jit.ignore
    def describe(self) -> str:
        return f"block of width {self.up.in_features}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.act(self.up(self.norm(x))))


class ByteModel(nn.Module):
    def __init__(self, ctx: ModelContext, cfg: Config = DEFAULT) -> None:
        super().__init__()
        self.embed = nn.Embedding(ctx.vocab_size, cfg.width)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = Norm(cfg.width)
        self.head = nn.Linear(cfg.width, ctx.vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        # A causal running mean mixes positions without looking ahead.
        steps = torch.arange(1, x.shape[1] + 1, device=x.device).view(1, -1, 1)
        return self.head(self.norm(x.cumsum(dim=1) / steps))


def build_model(ctx: ModelContext) -> nn.Module:
    return traced(ByteModel)(ctx, SMALL)
