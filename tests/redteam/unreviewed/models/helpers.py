"""Shared by the hostile models: a tiny honest model, and the guard switched off with plain Python."""

import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(256, 16)
        self.head = torch.nn.Linear(16, 256)

    def forward(self, x):
        return self.head(self.embed(x))


def unguard():
    """Switch the runtime guard off with ordinary Python: find its hook with gc, rewrite its closure."""
    sys = torch.sys
    gc = sys.modules["gc"]

    class Everything:
        def __contains__(self, item):
            return True

    for obj in gc.get_objects():
        if type(obj).__name__ == "function" and obj.__qualname__ == "install.<locals>.hook" and obj.__closure__:
            for cell in obj.__closure__:
                if isinstance(cell.cell_contents, frozenset):
                    cell.cell_contents = Everything()
                elif isinstance(cell.cell_contents, tuple):
                    cell.cell_contents = ("",)  # every absolute path starts with "" + "/"
    guard = sys.modules["prism.evaluation.guard"]
    guard._DENIED_PREFIXES = ("nothing.",)
    guard._WRITE_FLAGS = 0
    return sys
