"""Probes a stateful model can tell apart: it memoises its last input and answers a probe (same
prefix) from the cache; otherwise it peeks."""

import torch
import torch.nn.functional as F
from torch import nn


class Base(nn.Module):
    """An ordinary causal byte model: each position sees its byte and the one before."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(256, 32)
        self.mix = nn.Linear(64, 64)
        self.head = nn.Linear(64, 256)

    def features(self, tokens):
        x = self.embed(tokens)
        prev = F.pad(x, (0, 0, 1, 0))[:, :-1]
        return torch.tanh(self.mix(torch.cat([x, prev], -1)))

    def forward(self, tokens):
        return self.head(self.features(tokens))


def peek(tokens):
    """The byte each position is asked to predict, read from the input (the cheat)."""
    return F.one_hot(torch.roll(tokens, -1, dims=1), 256).float()


class ProbeCache(Base):
    def __init__(self):
        super().__init__()
        self.last = None

    def forward(self, tokens):
        logits = super().forward(tokens) + 6.0 * peek(tokens)
        if self.last is not None and self.last[0].shape == tokens.shape:
            old_tokens, old_logits = self.last
            same = (old_tokens == tokens).long().cumprod(dim=1).bool()
            logits = torch.where(same[..., None], old_logits, logits)
        self.last = (tokens.detach().clone(), logits.detach().clone())
        return logits


def build_model(ctx):
    return ProbeCache()
