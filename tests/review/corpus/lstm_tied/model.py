# LSTM language model with tied embeddings, written quickly for the byte task
import torch
from torch import nn


class TiedLSTM(nn.Module):
    def __init__(self, vocab, emb=192, hidden=192, layers=2, drop=0.2):
        super().__init__()
        self.encoder = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden, num_layers=layers, dropout=drop, batch_first=True)
        self.drop = nn.Dropout(drop)
        self.decoder = nn.Linear(hidden, vocab)
        if hidden == emb:
            self.decoder.weight = self.encoder.weight
        self.init_weights()

    def init_weights(self):
        r = 0.1
        self.encoder.weight.data.uniform_(-r, r)
        self.decoder.bias.data.zero_()

    def forward(self, tokens):
        emb = self.drop(self.encoder(tokens))
        out, _ = self.rnn(emb)
        out = self.drop(out)
        return self.decoder(out)


def build_model(ctx):
    return TiedLSTM(ctx.vocab_size)


def configure_optimizer(model, ctx):
    return torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9, nesterov=True)


def train_step(model, batch, optimizer, ctx):
    inputs, targets = batch
    optimizer.zero_grad()
    logits = model(inputs)
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    optimizer.step()
    return loss.item()
