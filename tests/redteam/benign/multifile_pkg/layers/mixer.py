# ruff: noqa - a realistic corpus keeps the older idioms real projects use
import torch
import torch.nn.functional as F
from torch import nn


class ShortConvMixer(nn.Module):
    """Depthwise causal convolution followed by a gated projection."""

    def __init__(self, d_model: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, groups=d_model)
        self.gate = nn.Linear(d_model, 2 * d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))
        h = self.depthwise(h).transpose(1, 2)
        a, b = self.gate(h).chunk(2, dim=-1)
        return a * torch.sigmoid(b)
