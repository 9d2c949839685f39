# named_parameters() hides a big layer, so the architecture graph lists only the small ones.
import torch
from helpers import Tiny


class Hidden(Tiny):
    def __init__(self):
        super().__init__()
        self.big = torch.nn.Linear(2048, 1024)

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        for name, p in super().named_parameters(prefix, recurse, remove_duplicate):
            if not name.startswith("big"):
                yield name, p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters():
            yield p


def build_model(ctx):
    return Hidden()
