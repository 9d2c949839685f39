import torch
import torch.nn as nn


class PostNormLayer(nn.Module):
    def __init__(self, size, heads, ff):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(size, heads, dropout=0.1, batch_first=True)
        self.linear1 = nn.Linear(size, ff)
        self.linear2 = nn.Linear(ff, size)
        self.norm1 = nn.LayerNorm(size)
        self.norm2 = nn.LayerNorm(size)
        self.dropout = nn.Dropout(0.1)

    def forward(self, src, mask):
        attn_out = self.self_attn(src, src, src, attn_mask=mask, need_weights=False)[0]
        src = self.norm1(src + self.dropout(attn_out))
        ff_out = self.linear2(self.dropout(torch.relu(self.linear1(src))))
        return self.norm2(src + self.dropout(ff_out))


class Encoder(nn.Module):
    def __init__(self, vocab_size, length, size=128, heads=8, ff=512, count=3):
        super().__init__()
        self.scale = size ** 0.5
        self.embed = nn.Embedding(vocab_size, size)
        pe = torch.zeros(length, size)
        position = torch.arange(0, length).unsqueeze(1).float()
        div = torch.exp(torch.arange(0, size, 2).float() * (-torch.log(torch.tensor(10000.0)) / size))
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe.unsqueeze(0))
        self.layers = nn.ModuleList([PostNormLayer(size, heads, ff) for _ in range(count)])
        self.fc = nn.Linear(size, vocab_size)

    def forward(self, src):
        n = src.shape[1]
        mask = torch.full((n, n), float("-inf"), device=src.device).triu(1)
        x = self.embed(src) * self.scale + self.pe[:, :n]
        for layer in self.layers:
            x = layer(x, mask)
        return self.fc(x)


def build_model(ctx):
    return Encoder(ctx.vocab_size, ctx.seq_len)


def configure_optimizer(model, ctx):
    return torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-9)


def train_step(model, batch, optimizer, ctx):
    source, target = batch
    optimizer.zero_grad()
    output = model(source)
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)(output.view(-1, output.size(-1)), target.view(-1))
    loss.backward()
    optimizer.step()
    return loss.item()
