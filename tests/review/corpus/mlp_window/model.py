import torch
import torch.nn as nn
import torch.nn.functional as F


def shift_right(x, n):
    return F.pad(x, (n, 0))[:, : x.shape[1]]


class WindowMLP(nn.Module):
    """Predicts the next byte from a fixed window of previous bytes (Bengio-style)."""

    def __init__(self, vocab_size, window=8, emb=48, hidden=512):
        super().__init__()
        self.window = window
        self.emb = nn.Embedding(vocab_size + 1, emb)
        self.hidden = nn.Linear(window * emb, hidden)
        self.act = nn.Tanh()
        self.out = nn.Linear(hidden, vocab_size)
        self.pad_id = vocab_size

    def forward(self, x):
        cols = []
        for i in range(self.window):
            shifted = shift_right(x + 1, i) - 1
            shifted = torch.where(shifted < 0, torch.full_like(shifted, self.pad_id), shifted)
            cols.append(self.emb(shifted))
        h = torch.cat(cols, dim=-1)
        return self.out(self.act(self.hidden(h)))


def build_model(ctx):
    return WindowMLP(ctx.vocab_size)


def train_step(model, batch, optimizer, ctx):
    x, y = batch
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
