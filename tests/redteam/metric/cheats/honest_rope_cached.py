"""Honest: rotary attention with cached cos/sin tables in buffers, which every forward saves for backward.

The old in-process probe restored every buffer in place between the forward and the step, which
broke the autograd graph the default step reuses: a false failure at step 0.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Rope(nn.Module):
    def __init__(self, seq_len):
        super().__init__()
        self.embed = nn.Embedding(256, 32)
        self.qkv = nn.Linear(32, 96)
        self.head = nn.Linear(32, 256)
        inv = 1.0 / (10000 ** (torch.arange(0, 32, 2).float() / 32))
        angles = torch.outer(torch.arange(seq_len).float(), inv)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def rotate(self, x):
        n = x.shape[1]
        a, b = x[..., 0::2], x[..., 1::2]
        cos, sin = self.cos[:n], self.sin[:n]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], -1)

    def forward(self, tokens):
        x = self.embed(tokens)
        q, k, v = self.qkv(x).split(32, -1)
        q, k = self.rotate(q), self.rotate(k)
        y = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], is_causal=True)[:, 0]
        return self.head(x + y)


def build_model(ctx):
    return Rope(ctx.seq_len)
