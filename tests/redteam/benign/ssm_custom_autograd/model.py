# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""A diagonal linear recurrence (S4D/LRU-like) with a custom autograd scan.

The scan is written as a `torch.autograd.Function` so that the backward pass runs the same
recurrence in reverse instead of storing every intermediate state.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from prism.contract import ModelContext


class LinearScan(torch.autograd.Function):
    """h_t = a * h_{t-1} + x_t along dim 1, with `a` in (0, 1) per channel."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        h = torch.zeros_like(x[:, 0])
        out = torch.empty_like(x)
        for t in range(x.shape[1]):
            h = a * h + x[:, t]
            out[:, t] = h
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, out = ctx.saved_tensors
        grad_x = torch.empty_like(grad_out)
        g = torch.zeros_like(grad_out[:, 0])
        for t in reversed(range(grad_out.shape[1])):
            g = grad_out[:, t] + a * g
            grad_x[:, t] = g
        prev = F.pad(out[:, :-1], (0, 0, 1, 0))
        grad_a = (grad_x * prev).sum(dim=(0, 1))
        return grad_x, grad_a


class RecurrentLayer(nn.Module):
    def __init__(self, d_model: int, d_state: int, r_min: float = 0.9, r_max: float = 0.999) -> None:
        super().__init__()
        u = torch.rand(d_state)
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(u * (r_max**2 - r_min**2) + r_min**2)))
        self.in_proj = nn.Linear(d_model, d_state)
        self.out_proj = nn.Linear(d_state, d_model)
        self.norm = nn.LayerNorm(d_model)

    def decay(self) -> torch.Tensor:
        return torch.exp(-torch.exp(self.nu_log))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.decay()
        u = self.in_proj(self.norm(x)) * torch.sqrt(1 - a**2)
        h = LinearScan.apply(u, a)
        return x + self.out_proj(F.gelu(h))


class ByteSSM(nn.Module):
    def __init__(self, vocab_size: int, d_model: int = 256, d_state: int = 256, depth: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList([RecurrentLayer(d_model, d_state) for _ in range(depth)])
        self.head = nn.Linear(d_model, vocab_size)
        nn.init.normal_(self.embed.weight, std=1.0 / math.sqrt(d_model))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed(idx)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def build_model(ctx: ModelContext) -> nn.Module:
    return ByteSSM(ctx.vocab_size)
