# ruff: noqa - an independent corpus keeps the idioms of its own style
"""A causal convolution stack written only with nn.Sequential and a helper that builds it."""

import torch
from torch import nn


class CausalPad(nn.Module):
    def __init__(self, amount):
        super().__init__()
        self.amount = amount

    def forward(self, x):
        return nn.functional.pad(x, (self.amount, 0))


class Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


def conv_block(channels, kernel, dilation):
    return nn.Sequential(
        CausalPad((kernel - 1) * dilation),
        nn.Conv1d(channels, channels, kernel, dilation=dilation),
        nn.GroupNorm(1, channels),
        nn.SiLU(),
    )


def build_model(ctx):
    channels = 96
    return nn.Sequential(
        nn.Embedding(ctx.vocab_size, channels),
        Transpose(),
        *[conv_block(channels, 3, 2**i) for i in range(5)],
        Transpose(),
        nn.LayerNorm(channels),
        nn.Linear(channels, ctx.vocab_size),
    )


if __name__ == "__main__":

    class _Ctx:
        vocab_size = 256

    print(build_model(_Ctx())(torch.randint(0, 256, (2, 32))).shape)
