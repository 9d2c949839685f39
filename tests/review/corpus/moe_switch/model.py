import torch
import torch.nn as nn
import torch.nn.functional as F


class Expert(nn.Module):
    def __init__(self, dim, mult=2):
        super().__init__()
        self.w_in = nn.Linear(dim, dim * mult)
        self.w_out = nn.Linear(dim * mult, dim)

    def forward(self, x):
        return self.w_out(F.silu(self.w_in(x)))


class SwitchFFN(nn.Module):
    def __init__(self, dim, n_experts=4):
        super().__init__()
        self.router = nn.Linear(dim, n_experts, bias=False)
        self.experts = nn.ModuleList([Expert(dim) for _ in range(n_experts)])

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        probs = self.router(flat).softmax(dim=-1)
        weight, choice = probs.max(dim=-1)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            sel = choice == e
            if sel.any():
                out[sel] = expert(flat[sel]) * weight[sel].unsqueeze(-1)
        return out.view_as(x)


class MoELayer(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.n1 = nn.LayerNorm(dim)
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.n2 = nn.LayerNorm(dim)
        self.ffn = SwitchFFN(dim)

    def forward(self, x, mask):
        h = self.n1(x)
        a, _ = self.mha(h, h, h, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.ffn(self.n2(x))


class SwitchLM(nn.Module):
    def __init__(self, vocab, ctx_len, dim=128, depth=3, heads=4):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, ctx_len, dim))
        self.layers = nn.ModuleList([MoELayer(dim, heads) for _ in range(depth)])
        self.head = nn.Linear(dim, vocab)

    def forward(self, x):
        T = x.shape[1]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1)
        h = self.tok(x) + self.pos[:, :T]
        for layer in self.layers:
            h = layer(h, mask)
        return self.head(h)


def build_model(ctx):
    return SwitchLM(ctx.vocab_size, ctx.seq_len)


def configure_optimizer(model, ctx):
    return torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
