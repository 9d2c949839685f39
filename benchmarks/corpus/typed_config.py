# ruff: noqa - an independent corpus keeps the idioms of its own style
"""A byte transformer configured by a typed dataclass, with type hints everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Hyper:
    width: int = 64
    heads: int = 4
    layers: int = 2
    dropout: float = 0.0
    tie_weights: bool = True
    extra: list[int] = field(default_factory=list)


BASE = Hyper()


class Attention(nn.Module):
    def __init__(self, hp: Hyper) -> None:
        super().__init__()
        self.heads = hp.heads
        self.qkv = nn.Linear(hp.width, 3 * hp.width, bias=False)
        self.proj = nn.Linear(hp.width, hp.width)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Layer(nn.Module):
    def __init__(self, hp: Hyper) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(hp.width), nn.LayerNorm(hp.width)
        self.attn = Attention(hp)
        self.mlp = nn.Sequential(nn.Linear(hp.width, 4 * hp.width), nn.GELU(), nn.Linear(4 * hp.width, hp.width))
        self.drop = nn.Dropout(hp.dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))


class TypedLM(nn.Module):
    def __init__(self, vocab: int, seq_len: int, hp: Hyper = BASE) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, hp.width)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, hp.width))
        self.layers = nn.ModuleList([Layer(hp) for _ in range(hp.layers)])
        self.norm = nn.LayerNorm(hp.width)
        self.head = nn.Linear(hp.width, vocab, bias=False)
        if hp.tie_weights:
            self.head.weight = self.tok.weight

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.tok(tokens) + self.pos[:, : tokens.shape[1]]
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


def build_model(ctx) -> nn.Module:
    return TypedLM(ctx.vocab_size, ctx.seq_len)
