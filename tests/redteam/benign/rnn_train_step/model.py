# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""A two-layer LSTM byte model with its own optimizer and update step.

`train_step` uses truncated BPTT state carried across batches, gradient clipping and a cosine
learning-rate schedule stepped once per batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

from prism.contract import ModelContext

WARMUP_STEPS = 50


class LSTMByteModel(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden: int = 512, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True, dropout=0.1)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(hidden, vocab_size)
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset_state(self) -> None:
        self._state = None

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        state = self._state
        if state is not None and state[0].shape[1] != idx.shape[0]:
            state = None
        output, (h, c) = self.rnn(self.embed(idx), state)
        self._state = (h.detach(), c.detach())
        return self.out(self.drop(output))


def build_model(ctx: ModelContext) -> nn.Module:
    torch.manual_seed(ctx.seed)
    return LSTMByteModel(ctx.vocab_size)


def _cosine(total_steps: int):
    def schedule(step: int) -> float:
        if step < WARMUP_STEPS:
            return (step + 1) / WARMUP_STEPS
        progress = min(1.0, (step - WARMUP_STEPS) / max(1, total_steps - WARMUP_STEPS))
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return schedule


def configure_optimizer(model: nn.Module, ctx: ModelContext) -> dict[str, Any]:
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    total = max(1, ctx.token_budget // (ctx.batch_size * ctx.seq_len))
    return {"optimizer": optimizer, "scheduler": LambdaLR(optimizer, _cosine(total))}


def train_step(model: nn.Module, batch, optimizer, ctx: ModelContext) -> float:
    inputs, targets = batch
    opt = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    model.train()
    logits = model(inputs)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()
    if isinstance(optimizer, dict):
        optimizer["scheduler"].step()
    return float(loss.item())
