import torch
import torch.nn as nn


class CausalConv(nn.Conv1d):
    def __init__(self, c_in, c_out, k, dilation=1):
        super().__init__(c_in, c_out, k, dilation=dilation)
        self.left = (k - 1) * dilation

    def forward(self, x):
        return super().forward(nn.functional.pad(x, (self.left, 0)))


class ConvBlock(nn.Module):
    def __init__(self, ch, k):
        super().__init__()
        self.conv1 = CausalConv(ch, 2 * ch, k)
        self.conv2 = CausalConv(ch, ch, 1)
        self.bn = nn.BatchNorm1d(ch)

    def forward(self, x):
        a, b = self.conv1(x).chunk(2, dim=1)
        return x + self.conv2(self.bn(torch.tanh(a) * torch.sigmoid(b)))


class CharCNN(nn.Module):
    def __init__(self, vocab, ch=128, k=5, n=6):
        super().__init__()
        self.emb = nn.Embedding(vocab, ch)
        self.blocks = nn.Sequential(*[ConvBlock(ch, k) for _ in range(n)])
        self.out = nn.Conv1d(ch, vocab, 1)

    def forward(self, x):
        h = self.emb(x).transpose(1, 2)
        h = self.blocks(h)
        return self.out(h).transpose(1, 2)


def build_model(ctx):
    return CharCNN(ctx.vocab_size)
