import torch.nn.functional as F
from torch import nn


class Unmasked(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(256, 32)
        self.qkv = nn.Linear(32, 96)
        self.head = nn.Linear(32, 256)

    def forward(self, tokens):
        q, k, v = self.qkv(self.embed(tokens)).split(32, dim=2)
        return self.head(F.scaled_dot_product_attention(q, k, v))


def build_model(ctx):
    return Unmasked()
