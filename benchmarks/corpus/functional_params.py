# ruff: noqa - an independent corpus keeps the idioms of its own style
"""A byte model in functional style: raw parameters, F.* calls, no nn.Linear."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FunctionalLM(nn.Module):
    def __init__(self, vocab: int = 256, width: int = 64, depth: int = 2) -> None:
        super().__init__()
        self.embed = nn.Parameter(torch.randn(vocab, width) / math.sqrt(width))
        self.w_in = nn.ParameterList([nn.Parameter(torch.randn(width, 4 * width) * 0.02) for _ in range(depth)])
        self.w_out = nn.ParameterList([nn.Parameter(torch.zeros(4 * width, width)) for _ in range(depth)])
        self.gains = nn.Parameter(torch.ones(depth, width))
        self.head = nn.Parameter(torch.randn(width, vocab) * 0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.embedding(tokens, self.embed)
        for i, (w_in, w_out) in enumerate(zip(self.w_in, self.w_out)):
            h = F.layer_norm(x, (x.shape[-1],), weight=self.gains[i])
            shifted = F.pad(h, (0, 0, 1, 0))[:, :-1]
            x = x + F.gelu((h + shifted) @ w_in) @ w_out
        return F.linear(x, self.head.t())


def build_model(ctx) -> nn.Module:
    return FunctionalLM(vocab=ctx.vocab_size)
