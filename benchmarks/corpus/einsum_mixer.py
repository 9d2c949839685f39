# ruff: noqa - an independent corpus keeps the idioms of its own style
"""A token-mixing model written with einsum, a custom autograd Function and torch.no_grad init."""

import math

import torch
from torch import nn


class StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x * 8) / 8

    @staticmethod
    def backward(ctx, grad):
        return grad


class Mixer(nn.Module):
    def __init__(self, width, seq_len):
        super().__init__()
        self.token_mix = nn.Parameter(torch.zeros(seq_len, seq_len))
        self.channel = nn.Parameter(torch.empty(width, width))
        self.register_buffer("mask", torch.tril(torch.ones(seq_len, seq_len)), persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.channel, a=math.sqrt(5))

    def forward(self, x):
        t = x.shape[1]
        weights = (self.token_mix[:t, :t] * self.mask[:t, :t]).softmax(-1) * self.mask[:t, :t]
        mixed = torch.einsum("st,btc->bsc", weights, x)
        return x + StraightThrough.apply(torch.einsum("btc,cd->btd", mixed, self.channel))


class EinsumLM(nn.Module):
    def __init__(self, vocab, seq_len, width=64, depth=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mixers = nn.ModuleList(Mixer(width, seq_len) for _ in range(depth))
        self.out = nn.Linear(width, vocab)

    def forward(self, tokens):
        x = self.embed(tokens)
        for mixer in self.mixers:
            x = mixer(x)
        return self.out(x)


def build_model(ctx):
    return EinsumLM(ctx.vocab_size, ctx.seq_len)
