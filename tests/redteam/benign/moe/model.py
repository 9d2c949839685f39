# ruff: noqa - a realistic corpus keeps the older idioms real projects use
"""Sparse mixture-of-experts transformer with top-2 routing and a load-balancing loss.

The auxiliary loss is returned through `train_step`, which adds it to the language-model loss
before the update; the harness records its own loss before this step runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from prism.contract import ModelContext


@dataclass
class MoEConfig:
    vocab_size: int = 256
    d_model: int = 192
    n_layers: int = 3
    n_heads: int = 6
    n_experts: int = 8
    top_k: int = 2
    expert_hidden: int = 384
    aux_weight: float = 0.01
    layer_norm_eps: float = 1e-5
    capacity_factors: list[float] = field(default_factory=lambda: [1.25, 2.0])


class Expert(nn.Module):
    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, hidden)
        self.fc2 = nn.Linear(hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class TopKRouter(nn.Module):
    def __init__(self, d_model: int, n_experts: int, top_k: int) -> None:
        super().__init__()
        self.gate = nn.Linear(d_model, n_experts, bias=False)
        self.top_k = top_k
        self.n_experts = n_experts

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.gate(x)
        probs = logits.softmax(dim=-1)
        weights, indices = probs.topk(self.top_k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        # Switch-style balance loss: fraction routed times mean gate probability.
        routed = F.one_hot(indices[..., 0], self.n_experts).float().mean(dim=0)
        aux = self.n_experts * (routed * probs.mean(dim=0)).sum()
        return weights, indices, aux


class MoELayer(nn.Module):
    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.router = TopKRouter(cfg.d_model, cfg.n_experts, cfg.top_k)
        self.experts = nn.ModuleList(Expert(cfg.d_model, cfg.expert_hidden) for _ in range(cfg.n_experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        weights, indices, aux = self.router(flat)
        out = torch.zeros_like(flat)
        for slot in range(indices.shape[-1]):
            for e, expert in enumerate(self.experts):
                mask = indices[:, slot] == e
                if mask.any():
                    out[mask] += weights[mask, slot, None] * expert(flat[mask])
        return out.view(shape), aux


class Block(nn.Module):
    def __init__(self, cfg: MoEConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.attn = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, batch_first=True)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.moe = MoELayer(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.ln1(x)
        attn_out, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + attn_out
        moe_out, aux = self.moe(self.ln2(x))
        return x + moe_out, aux


class MoETransformer(nn.Module):
    def __init__(self, cfg: MoEConfig, seq_len: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, cfg.d_model))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size)
        mask = torch.triu(torch.full((seq_len, seq_len), float("-inf")), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)
        self.last_aux: Optional[torch.Tensor] = None

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.size(1)
        x = self.tok(idx) + self.pos[:, :t]
        aux_total = x.new_zeros(())
        for block in self.blocks:
            x, aux = block(x, self.causal_mask[:t, :t])
            aux_total = aux_total + aux
        self.last_aux = aux_total / len(self.blocks)
        return self.lm_head(self.ln_f(x))


def build_model(ctx: ModelContext) -> nn.Module:
    return MoETransformer(MoEConfig(vocab_size=ctx.vocab_size), seq_len=ctx.seq_len)


def train_step(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], optimizer, ctx: ModelContext
) -> torch.Tensor:
    inputs, targets = batch
    optimizer.zero_grad(set_to_none=True)
    logits = model(inputs)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
    aux = getattr(model, "last_aux", None)
    if aux is not None:
        loss = loss + model.cfg.aux_weight * aux
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    return loss.detach()
