"""Held-out that adapts: in eval it leaves inference mode and learns from the bytes it is scored on."""

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


class Adapt(Base):
    def forward(self, tokens):
        logits = super().forward(tokens)
        if not self.training:
            with torch.inference_mode(False), torch.enable_grad():
                own = tokens.clone()
                loss = F.cross_entropy(super().forward(own)[:, :-1].reshape(-1, 256), own[:, 1:].reshape(-1))
                grads = torch.autograd.grad(loss, list(self.parameters()))
                with torch.no_grad():
                    for p, g in zip(self.parameters(), grads, strict=True):
                        p.sub_(0.5 * g)
        return logits


def build_model(ctx):
    return Adapt()
