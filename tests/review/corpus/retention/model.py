import torch
import torch.nn as nn


class MultiScaleRetention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.dk = hidden // heads
        gammas = 1 - torch.exp(torch.linspace(-5.0, -1.0, heads) * 0.7)
        self.register_buffer("gamma", gammas)
        self.wq = nn.Linear(hidden, hidden, bias=False)
        self.wk = nn.Linear(hidden, hidden, bias=False)
        self.wv = nn.Linear(hidden, hidden, bias=False)
        self.wg = nn.Linear(hidden, hidden, bias=False)
        self.wo = nn.Linear(hidden, hidden, bias=False)
        self.gn = nn.GroupNorm(heads, hidden)

    def decay_mask(self, n, device):
        i = torch.arange(n, device=device)
        diff = (i[:, None] - i[None, :]).float()
        mask = self.gamma[:, None, None] ** diff.clamp(min=0)
        return mask * (diff >= 0)

    def forward(self, x):
        B, N, H = x.shape
        shape = (B, N, self.heads, self.dk)
        q = self.wq(x).view(shape).transpose(1, 2)
        k = self.wk(x).view(shape).transpose(1, 2)
        v = self.wv(x).view(shape).transpose(1, 2)
        ret = (q @ k.transpose(-1, -2)) * self.decay_mask(N, x.device)
        y = (ret @ v).transpose(1, 2).reshape(B * N, H)
        y = self.gn(y).view(B, N, H)
        return self.wo(nn.functional.silu(self.wg(x)) * y)


class RetNetLayer(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.ln_a = nn.LayerNorm(hidden)
        self.msr = MultiScaleRetention(hidden, heads)
        self.ln_b = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))

    def forward(self, x):
        y = self.msr(self.ln_a(x)) + x
        return self.ffn(self.ln_b(y)) + y


class RetNet(nn.Module):
    def __init__(self, vocab, hidden=128, heads=4, layers=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList([RetNetLayer(hidden, heads) for _ in range(layers)])
        self.out = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        x = self.emb(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.out(x)


def build_model(ctx):
    return RetNet(vocab=ctx.vocab_size)


def configure_optimizer(model, ctx):
    return torch.optim.Adam(model.parameters(), lr=8e-4, betas=(0.9, 0.98), eps=1e-9)
