# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Small causal transformer written the way widely used model libraries write theirs.

Idioms found in public model code that the review must accept (issue 19, part 6): an optional
import guarded by `try`/`except ImportError` with a `None` fallback, `torch.jit.Final` class
annotations, `torch.jit.is_scripting()` around gradient checkpointing, `@torch.jit.export`,
`@autocast(..., enabled=False)` to keep the rotary tables in full precision, a named tuple's
`_asdict`/`_replace`, `self.__class__.__name__` in a repr, and a parameter-free layer as a
default argument.
"""

from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.amp import autocast
from torch.utils.checkpoint import checkpoint

try:
    from torch.nn.functional import scaled_dot_product_attention

    FUSED_AVAILABLE = True
except (ImportError, AttributeError):
    scaled_dot_product_attention = None
    FUSED_AVAILABLE = False

Hyper = namedtuple("Hyper", ["width", "heads", "depth", "ratio"])
DEFAULTS = Hyper(width=96, heads=4, depth=3, ratio=2)


@autocast("cuda", enabled=False)
def rotary_tables(length, dim, base=10000.0):
    inv = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
    angles = torch.outer(torch.arange(length).float(), inv)
    return angles.cos(), angles.sin()


def rotate(x, cos, sin):
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


class SelfAttention(nn.Module):
    fused: torch.jit.Final[bool]

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width)
        self.fused = FUSED_AVAILABLE

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        cos, sin = rotary_tables(t, c // self.heads)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if self.fused and scaled_dot_product_attention is not None:
            y = scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = (q @ k.transpose(-2, -1)) * (k.shape[-1] ** -0.5)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            y = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, hyper, act=nn.GELU()):
        super().__init__()
        self.norm1 = nn.LayerNorm(hyper.width)
        self.attn = SelfAttention(hyper.width, hyper.heads)
        self.norm2 = nn.LayerNorm(hyper.width)
        self.mlp = nn.Sequential(
            nn.Linear(hyper.width, hyper.ratio * hyper.width),
            act,
            nn.Linear(hyper.ratio * hyper.width, hyper.width),
        )

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    def __init__(self, vocab_size, hyper=DEFAULTS):
        super().__init__()
        self.hyper = hyper
        self.embed = nn.Embedding(vocab_size, hyper.width)
        self.blocks = nn.ModuleList(Block(hyper) for _ in range(hyper.depth))
        self.norm = nn.LayerNorm(hyper.width)
        self.head = nn.Linear(hyper.width, vocab_size, bias=False)
        self.grad_checkpointing = False

    @torch.jit.export
    def settings(self):
        return self.hyper._asdict()

    def extra_repr(self):
        return f"{self.__class__.__name__}(depth={self.hyper.depth}, width={self.hyper.width})"

    def forward(self, idx):
        x = self.embed(idx)
        for block in self.blocks:
            if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.head(F.layer_norm(x, (x.shape[-1],), self.norm.weight, self.norm.bias))


def build_model(ctx):
    hyper = DEFAULTS._replace(depth=2) if ctx.seq_len < 64 else DEFAULTS
    return TinyLM(ctx.vocab_size, hyper)
