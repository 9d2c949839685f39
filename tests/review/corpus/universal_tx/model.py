"""Universal transformer: one shared layer applied repeatedly, with a step embedding."""
import torch
import torch.nn as nn

STEPS = 6


class SharedLayer(nn.Module):
    def __init__(self, d_model, nhead):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )

    def forward(self, x, mask):
        return self.layer(x, src_mask=mask, is_causal=True)


class UniversalTransformer(nn.Module):
    def __init__(self, vocab_size, max_len, d_model=192, nhead=6):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.position = nn.Parameter(torch.randn(max_len, d_model) * 0.01)
        self.step_embedding = nn.Embedding(STEPS, d_model)
        self.shared = SharedLayer(d_model, nhead)
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, vocab_size)

    def forward(self, src):
        n = src.size(1)
        mask = nn.Transformer.generate_square_subsequent_mask(n, device=src.device)
        h = self.embedding(src) + self.position[:n]
        for step in range(STEPS):
            h = self.shared(h + self.step_embedding.weight[step], mask)
        return self.output(self.norm(h))


def build_model(ctx):
    return UniversalTransformer(ctx.vocab_size, ctx.seq_len)


def train_step(model, batch, optimizer, ctx):
    inp, tgt = batch
    optimizer.zero_grad()
    logits = model(inp)
    loss = nn.functional.cross_entropy(logits.permute(0, 2, 1), tgt)
    loss.backward()
    optimizer.step()
    return loss.detach()
