import torch
import torch.nn as nn
import torch.nn.functional as F


class HighwayCell(nn.Module):
    """An Elman-style cell with a highway gate, unrolled by hand."""

    def __init__(self, size):
        super().__init__()
        self.ih = nn.Linear(size, 2 * size)
        self.hh = nn.Linear(size, 2 * size, bias=False)

    def forward(self, x_t, h):
        cand, gate = (self.ih(x_t) + self.hh(h)).chunk(2, -1)
        t = torch.sigmoid(gate)
        return t * torch.tanh(cand) + (1 - t) * h


class HighwayRNN(nn.Module):
    def __init__(self, vocab_size, size=256):
        super().__init__()
        self.size = size
        self.embed = nn.Embedding(vocab_size, size)
        self.cell = HighwayCell(size)
        self.proj = nn.Linear(size, vocab_size)

    def forward(self, x):
        e = self.embed(x)
        h = e.new_zeros(e.shape[0], self.size)
        states = []
        for t in range(e.shape[1]):
            h = self.cell(e[:, t], h)
            states.append(h)
        return self.proj(torch.stack(states, 1))


def build_model(ctx):
    return HighwayRNN(ctx.vocab_size)


def configure_optimizer(model, ctx):
    return torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.95)


def train_step(model, batch, optimizer, ctx):
    x, y = batch
    logits = model(x)
    loss = F.nll_loss(F.log_softmax(logits, -1).view(-1, logits.shape[-1]), y.view(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)
    optimizer.step()
    return loss
