import torch
from torch import nn


class NanLogits(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(256, 256)

    def forward(self, tokens):
        return self.embed(tokens) * torch.tensor(float("nan"))


def build_model(ctx):
    return NanLogits()
