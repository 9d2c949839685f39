# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Entrypoint: alternating short-convolution and attention blocks."""

import torch
from torch import nn

from layers import CausalSelfAttention, ShortConvMixer
from prism.contract import ModelContext
from settings import HybridSettings


class HybridBlock(nn.Module):
    def __init__(self, s: HybridSettings, use_attention: bool) -> None:
        super().__init__()
        self.norm_a = nn.LayerNorm(s.d_model)
        if use_attention:
            self.mix = CausalSelfAttention(s.d_model, s.n_heads, s.dropout)
        else:
            self.mix = ShortConvMixer(s.d_model, s.conv_kernel)
        self.norm_b = nn.LayerNorm(s.d_model)
        self.ff = nn.Sequential(nn.Linear(s.d_model, 4 * s.d_model), nn.GELU(), nn.Linear(4 * s.d_model, s.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mix(self.norm_a(x))
        return x + self.ff(self.norm_b(x))


class HybridModel(nn.Module):
    def __init__(self, vocab_size: int, seq_len: int, s: HybridSettings = HybridSettings()) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, s.d_model)
        self.pos = nn.Embedding(seq_len, s.d_model)
        self.blocks = nn.ModuleList(
            HybridBlock(s, use_attention=(i % s.attention_every == s.attention_every - 1)) for i in range(s.n_layers)
        )
        self.norm = nn.LayerNorm(s.d_model)
        self.head = nn.Linear(s.d_model, vocab_size, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.embed(idx) + self.pos(positions)[None]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def build_model(ctx: ModelContext) -> nn.Module:
    return HybridModel(ctx.vocab_size, ctx.seq_len)
