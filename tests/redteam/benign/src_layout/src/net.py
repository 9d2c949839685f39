"""A GRU byte model whose entrypoint is src/net.py (prism.yaml), importing its sibling module."""

import torch
from layers import Block
from torch import nn

from prism.contract import ModelContext


class Net(nn.Module):
    def __init__(self, ctx: ModelContext, width: int = 48) -> None:
        super().__init__()
        self.embed = nn.Embedding(ctx.vocab_size, width)
        self.block = Block(width)
        self.head = nn.Linear(width, ctx.vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.embed(tokens)))


def build_model(ctx: ModelContext) -> nn.Module:
    return Net(ctx)
