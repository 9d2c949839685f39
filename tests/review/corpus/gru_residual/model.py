import torch
import torch.nn as nn
import torch.nn.functional as F

from layers import ResidualGRU


class ByteGRU(nn.Module):
    """Stack of residual GRU layers with a projection head."""

    def __init__(self, n_tokens: int, width: int = 160, depth: int = 3):
        super().__init__()
        self.table = nn.Embedding(n_tokens, width)
        self.stack = nn.ModuleList(ResidualGRU(width) for _ in range(depth))
        self.out_norm = nn.RMSNorm(width)
        self.readout = nn.Linear(width, n_tokens)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        h = self.table(seq)
        for layer in self.stack:
            h = layer(h)
        return self.readout(self.out_norm(h))


def build_model(ctx):
    net = ByteGRU(n_tokens=ctx.vocab_size)
    return net


def configure_optimizer(model, ctx):
    return torch.optim.RAdam(model.parameters(), lr=2e-3)


def train_step(model, batch, optimizer, ctx):
    src, tgt = batch
    pred = model(src)
    loss = F.cross_entropy(pred.transpose(1, 2), tgt, label_smoothing=0.05)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for p in model.parameters():
        if p.grad is not None:
            p.grad.clamp_(-1.0, 1.0)
    optimizer.step()
    return float(loss)
