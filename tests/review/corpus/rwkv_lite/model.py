import torch
import torch.nn as nn


class TimeMix(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mix_k = nn.Parameter(torch.full((1, 1, d), 0.5))
        self.mix_v = nn.Parameter(torch.full((1, 1, d), 0.5))
        self.mix_r = nn.Parameter(torch.full((1, 1, d), 0.5))
        self.decay = nn.Parameter(torch.zeros(d))
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.receptance = nn.Linear(d, d, bias=False)
        self.output = nn.Linear(d, d, bias=False)

    def forward(self, x):
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        k = self.key(x * self.mix_k + prev * (1 - self.mix_k))
        v = self.value(x * self.mix_v + prev * (1 - self.mix_v))
        r = torch.sigmoid(self.receptance(x * self.mix_r + prev * (1 - self.mix_r)))
        w = torch.exp(-torch.exp(self.decay))
        num = torch.zeros_like(x[:, 0])
        den = torch.zeros_like(x[:, 0])
        outs = []
        for t in range(x.shape[1]):
            ek = torch.exp(k[:, t].clamp(max=30))
            num = w * num + ek * v[:, t]
            den = w * den + ek
            outs.append(num / (den + 1e-6))
        return self.output(r * torch.stack(outs, dim=1))


class ChannelMix(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mix = nn.Parameter(torch.full((1, 1, d), 0.5))
        self.k = nn.Linear(d, 4 * d, bias=False)
        self.v = nn.Linear(4 * d, d, bias=False)
        self.r = nn.Linear(d, d, bias=False)

    def forward(self, x):
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        xk = x * self.mix + prev * (1 - self.mix)
        return torch.sigmoid(self.r(x)) * self.v(torch.square(torch.relu(self.k(xk))))


class RWKVBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.ln2 = nn.LayerNorm(d)
        self.att = TimeMix(d)
        self.ffn = ChannelMix(d)

    def forward(self, x):
        x = x + self.att(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class RWKV(nn.Module):
    def __init__(self, vocab, d=128, n=4):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.ln0 = nn.LayerNorm(d)
        self.blocks = nn.Sequential(*[RWKVBlock(d) for _ in range(n)])
        self.ln_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        return self.head(self.ln_out(self.blocks(self.ln0(self.emb(idx)))))


def build_model(ctx):
    return RWKV(ctx.vocab_size)
