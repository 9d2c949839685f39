import torch
import torch.nn as nn
import torch.nn.functional as F

RESIDUAL_CHANNELS = 96
SKIP_CHANNELS = 128
DILATIONS = [1, 2, 4, 8, 16, 32, 1, 2, 4, 8]


class GatedResidual(nn.Module):
    def __init__(self, dilation):
        super().__init__()
        self.dilation = dilation
        self.filter = nn.Conv1d(RESIDUAL_CHANNELS, RESIDUAL_CHANNELS, 2, dilation=dilation)
        self.gate = nn.Conv1d(RESIDUAL_CHANNELS, RESIDUAL_CHANNELS, 2, dilation=dilation)
        self.res = nn.Conv1d(RESIDUAL_CHANNELS, RESIDUAL_CHANNELS, 1)
        self.skip = nn.Conv1d(RESIDUAL_CHANNELS, SKIP_CHANNELS, 1)

    def forward(self, x):
        padded = F.pad(x, (self.dilation, 0))
        z = torch.tanh(self.filter(padded)) * torch.sigmoid(self.gate(padded))
        return x + self.res(z), self.skip(z)


class WaveNet(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, RESIDUAL_CHANNELS)
        self.layers = nn.ModuleList([GatedResidual(d) for d in DILATIONS])
        self.post1 = nn.Conv1d(SKIP_CHANNELS, SKIP_CHANNELS, 1)
        self.post2 = nn.Conv1d(SKIP_CHANNELS, vocab, 1)

    def forward(self, x):
        x = self.embed(x).permute(0, 2, 1)
        total = 0
        for layer in self.layers:
            x, s = layer(x)
            total = total + s
        y = self.post2(F.relu(self.post1(F.relu(total))))
        return y.permute(0, 2, 1)


def build_model(ctx):
    return WaveNet(ctx.vocab_size)


def configure_optimizer(model, ctx):
    return torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
