import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def alibi_slopes(n_heads: int) -> Tensor:
    start = 2 ** (-8 / n_heads)
    return torch.tensor([start ** (i + 1) for i in range(n_heads)])


class AlibiAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.to_q = nn.Linear(width, width, bias=False)
        self.to_k = nn.Linear(width, width, bias=False)
        self.to_v = nn.Linear(width, width, bias=False)
        self.to_out = nn.Linear(width, width)
        self.register_buffer("slopes", alibi_slopes(heads).view(1, heads, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q = self.to_q(x).view(b, n, self.heads, self.head_dim).permute(0, 2, 1, 3)
        k = self.to_k(x).view(b, n, self.heads, self.head_dim).permute(0, 2, 1, 3)
        v = self.to_v(x).view(b, n, self.heads, self.head_dim).permute(0, 2, 1, 3)
        idx = torch.arange(n, device=x.device)
        distance = (idx[None, :] - idx[:, None]).clamp(max=0).float()
        scores = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(self.head_dim)
        scores = scores + self.slopes * distance
        causal = torch.ones(n, n, device=x.device, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, -1e9)
        out = torch.einsum("bhij,bhjd->bhid", scores.softmax(-1), v)
        return self.to_out(out.permute(0, 2, 1, 3).reshape(b, n, -1))


class SwiGLU(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        hidden = int(8 * width / 3)
        self.w12 = nn.Linear(width, 2 * hidden, bias=False)
        self.w3 = nn.Linear(hidden, width, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class Layer(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(width)
        self.attention = AlibiAttention(width, heads)
        self.ff_norm = nn.RMSNorm(width)
        self.ff = SwiGLU(width)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.attn_norm(x))
        return x + self.ff(self.ff_norm(x))


class AlibiLM(nn.Module):
    def __init__(self, vocab: int, width: int = 144, depth: int = 4, heads: int = 6) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.layers = nn.Sequential(*(Layer(width, heads) for _ in range(depth)))
        self.final = nn.RMSNorm(width)
        self.unembed = nn.Linear(width, vocab, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.unembed(self.final(self.layers(self.embedding(tokens))))


def build_model(ctx):
    return AlibiLM(ctx.vocab_size)


def configure_optimizer(model, ctx):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.05)


def train_step(model, batch, optimizer, ctx):
    x, y = batch
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=False):
        logits = model(x)
    loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()
