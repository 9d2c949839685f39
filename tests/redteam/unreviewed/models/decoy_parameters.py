# parameters() returns a decoy of 256 values while a 2 M-parameter model trains.
import torch
from helpers import Tiny


class Decoy(Tiny):
    def __init__(self):
        super().__init__()
        self.big = torch.nn.Linear(2048, 1024)
        self.decoy = [torch.nn.Parameter(torch.zeros(256))]

    def parameters(self, recurse=True):
        return iter(self.decoy)


def build_model(ctx):
    return Decoy()
