"""Code nearly every submission shares: its fingerprints are ignored when comparing submissions.

Two independent authors writing a byte-level language model both write `loss.backward()`,
`optimizer.zero_grad()`, a cross-entropy over flattened logits and an AdamW optimizer. After names
and literals are normalized away those lines are identical, so without this list every pair of
models would look related. The list is code, not data from the database, so the stop-list is the
same on every machine and for every submission (a document-frequency table would let early
submitters shape what later ones are compared on). Extend it when the corpus shows new idioms.
"""

from __future__ import annotations

HEADER = """
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
"""

# Referenced by the snippets; defined so their names normalize as the project's own names.
STUBS = """
class Model(nn.Module):
    def __init__(self, vocab_size, seq_len):
        super().__init__()


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
"""

# Each top-level definition below is fingerprinted on its own (HEADER + it + STUBS).
SNIPPETS = """

def build_model(ctx):
    return Model(ctx.vocab_size, ctx.seq_len)


def build_model(ctx):
    model = Model(vocab_size=ctx.vocab_size, seq_len=ctx.seq_len)
    return model


def configure_optimizer(model, ctx):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)


def configure_optimizer(model, ctx):
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def configure_optimizer(model, ctx):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)


def train_step(model, batch, optimizer, ctx):
    x, y = batch
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def train_step(model, batch, optimizer, ctx):
    inputs, targets = batch
    logits = model(inputs)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.detach()


class Model(nn.Module):
    def __init__(self, vocab_size, dim):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.embed.weight
        self.dropout = nn.Dropout(0.1)
        self.blocks = nn.ModuleList([Block(dim, 4) for _ in range(4)])

    def forward(self, x):
        x = self.embed(x)
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)


class Pos(nn.Module):
    def __init__(self, vocab_size, seq_len, dim):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(seq_len, dim)

    def forward(self, idx):
        b, t = idx.shape
        pos = torch.arange(t, device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        mask = torch.triu(torch.ones(t, t, device=idx.device, dtype=torch.bool), diagonal=1)
        mask = torch.tril(torch.ones(t, t, device=idx.device)).view(1, 1, t, t)
        return x


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads)
        self.mlp = FeedForward(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return x
"""
