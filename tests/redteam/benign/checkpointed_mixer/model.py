# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Deep residual MLP stack with activation checkpointing and weight-normalized projections."""

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm
from torch.utils.checkpoint import checkpoint

from prism.contract import ModelContext

CONTEXT = 8  # bytes of left context each position sees


class ResidualMLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = weight_norm(nn.Linear(width, 2 * width))
        self.fc2 = weight_norm(nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class ContextWindowModel(nn.Module):
    """Predicts the next byte from the previous CONTEXT bytes, concatenated."""

    def __init__(self, vocab_size: int, embed: int = 64, width: int = 512, depth: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size + 1, embed)  # index vocab_size pads the left edge
        self.pad_index = vocab_size
        self.inp = nn.Linear(CONTEXT * embed, width)
        self.blocks: List[ResidualMLP] = nn.ModuleList(ResidualMLP(width) for _ in range(depth))  # type: ignore[assignment]
        self.out = nn.Linear(width, vocab_size)
        self.use_checkpoint = True

    def windows(self, idx: torch.Tensor) -> torch.Tensor:
        padded = F.pad(idx, (CONTEXT - 1, 0), value=self.pad_index)
        return padded.unfold(dimension=1, size=CONTEXT, step=1)  # (B, T, CONTEXT)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        ctx = self.embed(self.windows(idx)).flatten(-2)
        h = self.inp(ctx)
        for block in self.blocks:
            if self.use_checkpoint and self.training:
                h = checkpoint(block, h, use_reentrant=False)
            else:
                h = block(h)
        return self.out(h)


def build_model(ctx: ModelContext) -> nn.Module:
    return ContextWindowModel(ctx.vocab_size)


def configure_optimizer(model, ctx):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
