# ruff: noqa - a realistic corpus keeps the older idioms real projects use
import torch
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(ctx):
    return Bigram(ctx.vocab_size)
