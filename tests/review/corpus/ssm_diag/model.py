import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class DiagonalSSM(nn.Module):
    """A diagonal linear state-space layer computed with a causal convolution kernel."""

    def __init__(self, channels, state=32, max_len=512):
        super().__init__()
        self.log_a = nn.Parameter(torch.log(torch.linspace(0.5, 0.99, state)).repeat(channels, 1))
        self.b = nn.Parameter(torch.randn(channels, state) / math.sqrt(state))
        self.c = nn.Parameter(torch.randn(channels, state) / math.sqrt(state))
        self.d = nn.Parameter(torch.ones(channels))
        self.max_len = max_len

    def kernel(self, length):
        steps = torch.arange(length, device=self.b.device).float()
        powers = torch.exp(self.log_a.unsqueeze(-1) * steps)
        return torch.einsum("cs,csl,cs->cl", self.b, powers, self.c)

    def forward(self, u):
        L = u.shape[-1]
        k = self.kernel(L)
        n = 2 * L
        y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :L]
        return y + u * self.d.unsqueeze(-1)


class SSMLayer(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.ssm = DiagonalSSM(channels)
        self.out = nn.Linear(channels, 2 * channels)

    def forward(self, x):
        z = self.ssm(self.norm(x).transpose(1, 2)).transpose(1, 2)
        return x + F.glu(self.out(F.gelu(z)), dim=-1)


class SSMLanguageModel(nn.Module):
    def __init__(self, vocab_size, channels=128, layers=4):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, channels)
        self.layers = nn.ModuleList([SSMLayer(channels) for _ in range(layers)])
        self.decoder = nn.Linear(channels, vocab_size)

    def forward(self, x):
        x = self.encoder(x)
        for layer in self.layers:
            x = layer(x)
        return self.decoder(x)


def build_model(ctx):
    return SSMLanguageModel(ctx.vocab_size)


def configure_optimizer(model, ctx):
    ssm_params = [p for n, p in model.named_parameters() if "ssm" in n]
    other = [p for n, p in model.named_parameters() if "ssm" not in n]
    return torch.optim.AdamW([{"params": ssm_params, "lr": 1e-3, "weight_decay": 0.0}, {"params": other}], lr=4e-3)
