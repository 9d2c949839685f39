# -*- coding: utf-8 -*-
# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Transformer with ALiBi attention biases; blocks registered under generated names.

Older code registers numbered sub-modules with setattr/getattr instead of a ModuleList;
this model keeps that style on purpose.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from prism.contract import ModelContext

N_LAYERS = 4
D_MODEL = 128
N_HEADS = 4


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Geometric slopes from the ALiBi paper (Press et al., 2022)."""

    def power_of_2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return torch.tensor(power_of_2(n_heads))
    closest = 2 ** math.floor(math.log2(n_heads))
    extra = power_of_2(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(power_of_2(closest) + extra)


class AlibiAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, max_len: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.o = nn.Linear(d_model, d_model)
        pos = torch.arange(max_len)
        distance = (pos[None, :] - pos[:, None]).clamp(max=0).float()
        bias = alibi_slopes(n_heads)[:, None, None] * distance[None]
        causal = torch.ones(max_len, max_len).tril().bool()
        bias = bias.masked_fill(~causal, float("-inf"))
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
        scores = scores + self.bias[:, :t, :t]
        y = torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)
        return self.o(y.transpose(1, 2).reshape(b, t, d))


class Layer(nn.Module):
    def __init__(self, max_len: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(D_MODEL)
        self.attn = AlibiAttention(D_MODEL, N_HEADS, max_len)
        self.ln2 = nn.LayerNorm(D_MODEL)
        self.ff1 = nn.Linear(D_MODEL, 4 * D_MODEL)
        self.ff2 = nn.Linear(4 * D_MODEL, D_MODEL)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff2(F.relu(self.ff1(self.ln2(x))) ** 2)


class AlibiLM(nn.Module):
    def __init__(self, vocab_size, max_len):
        super(AlibiLM, self).__init__()
        self.embed = nn.Embedding(vocab_size, D_MODEL)
        for i in range(N_LAYERS):
            setattr(self, f"layer_{i}", Layer(max_len))
        self.final_norm = nn.LayerNorm(D_MODEL)
        self.unembed = nn.Linear(D_MODEL, vocab_size, bias=False)

    def forward(self, idx):
        x = self.embed(idx)
        for i in range(N_LAYERS):
            x = getattr(self, f"layer_{i}")(x)
        return self.unembed(self.final_norm(x))

    def extra_repr(self) -> str:
        return "layers={}, d_model={}".format(N_LAYERS, D_MODEL)


def build_model(ctx):
    return AlibiLM(ctx.vocab_size, ctx.seq_len)
