"""A graph that does not bind what runs: a reference model under tracing (a Proxy is no Tensor), a peek otherwise."""

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


class Detects(Base):
    def forward(self, tokens):
        logits = super().forward(tokens)
        if not isinstance(tokens, torch.Tensor):
            return logits
        return logits + 6.0 * peek(tokens)


def build_model(ctx):
    return Detects()
