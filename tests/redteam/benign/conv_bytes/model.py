# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Causal dilated 1-D convolutions over byte embeddings (a small WaveNet-style stack)."""

import torch
from torch import nn
from torch.nn import functional as F

from prism.contract import ModelContext

CHANNELS = 256
KERNEL = 3
DILATIONS = (1, 2, 4, 8, 16, 32, 1, 2, 4, 8)


class CausalConv1d(nn.Conv1d):
    """A Conv1d that pads on the left only, so position t never sees t+1."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__(in_ch, out_ch, kernel_size, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))


class GatedResidual(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = CausalConv1d(channels, 2 * channels, KERNEL, dilation)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        filt, gate = self.conv(x).chunk(2, dim=1)
        h = torch.tanh(filt) * torch.sigmoid(gate)
        return self.norm(x + self.proj(h))


class ConvByteModel(nn.Module):
    def __init__(self, vocab_size: int, channels: int = CHANNELS) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, channels)
        self.layers = nn.Sequential(*[GatedResidual(channels, d) for d in DILATIONS])
        self.head = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU(), nn.Conv1d(channels, vocab_size, 1))

    @property
    def receptive_field(self) -> int:
        return 1 + sum((KERNEL - 1) * d for d in DILATIONS)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed(idx).transpose(1, 2)  # (B, C, T)
        x = self.layers(x)
        return self.head(x).transpose(1, 2)  # (B, T, vocab)


def build_model(ctx: ModelContext) -> nn.Module:
    model = ConvByteModel(ctx.vocab_size)
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > ctx.parameter_cap:
        raise ValueError(f"model has {n_params} parameters, over the cap {ctx.parameter_cap}")
    return model
