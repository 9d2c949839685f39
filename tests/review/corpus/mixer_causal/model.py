import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalTokenMixing(nn.Module):
    def __init__(self, seq_len):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(seq_len, seq_len) * 0.02)
        self.bias = nn.Parameter(torch.zeros(seq_len))
        self.register_buffer("tri", torch.tril(torch.ones(seq_len, seq_len)))

    def forward(self, x):
        n = x.shape[1]
        w = (self.weight * self.tri)[:n, :n]
        return torch.einsum("ts,bsd->btd", w, x) + self.bias[:n, None]


class MixerLayer(nn.Module):
    def __init__(self, seq_len, dim, expansion=4):
        super().__init__()
        self.norm_tokens = nn.LayerNorm(dim)
        self.token_mix = CausalTokenMixing(seq_len)
        self.norm_channels = nn.LayerNorm(dim)
        self.channel_up = nn.Linear(dim, dim * expansion)
        self.channel_down = nn.Linear(dim * expansion, dim)

    def forward(self, x):
        x = x + self.token_mix(self.norm_tokens(x))
        y = self.channel_down(F.gelu(self.channel_up(self.norm_channels(x))))
        return x + y


class CausalMixer(nn.Module):
    def __init__(self, vocab, seq_len, dim=160, layers=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mixers = nn.ModuleList(MixerLayer(seq_len, dim) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, vocab)

    def forward(self, x):
        x = self.embed(x)
        for m in self.mixers:
            x = m(x)
        return self.proj(self.norm(x))


def build_model(ctx):
    return CausalMixer(ctx.vocab_size, ctx.seq_len)


def configure_optimizer(model, ctx):
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.99))
    return opt


def train_step(model, batch, optimizer, ctx):
    x, y = batch
    out = model(x)
    loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
