"""The table of equivalent forms, row by row: both spellings normalize to one program, and
look-alikes that compute something else do not (issue 15)."""

from __future__ import annotations

import pytest

from prism.review.similarity import fingerprint_files

HEAD = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"


def _model(init: str, forward: str) -> str:
    return (
        HEAD
        + "class Net(nn.Module):\n"
        + "    def __init__(self, vocab):\n"
        + "        super().__init__()\n"
        + "        self.emb = nn.Embedding(vocab, 64)\n"
        + "".join(f"        {line}\n" for line in init.splitlines())
        + "        self.head = nn.Linear(64, vocab)\n\n"
        + "    def forward(self, idx):\n"
        + "        x = self.emb(idx)\n"
        + "".join(f"        {line}\n" for line in forward.splitlines())
        + "        return self.head(x)\n\n\n"
        + "def build_model(ctx):\n"
        + "    return Net(ctx.vocab_size)\n"
    )


def _normalized(text: str) -> str:
    return fingerprint_files({"model.py": text}, "model.py").normalized_sha256


ROWS = {
    "relu: F / torch / method": [("", "x = F.relu(x)"), ("", "x = torch.relu(x)"), ("", "x = x.relu()")],
    "relu: inline module": [("", "x = F.relu(x)"), ("", "x = nn.ReLU()(x)")],
    "gelu: module field <-> functional": [("", "x = F.gelu(x)"), ("self.act = nn.GELU()", "x = self.act(x)")],
    "sigmoid: torch.special.expit": [("", "x = torch.sigmoid(x)"), ("", "x = torch.special.expit(x)")],
    "identity field": [("", ""), ("self.skip = nn.Identity()", "x = self.skip(x)")],
    "view <-> reshape": [
        ("", "x = x.view(-1, 64)"),
        ("", "x = x.reshape(-1, 64)"),
        ("", "x = torch.reshape(x, (-1, 64))"),
    ],
    "transpose forms": [
        ("", "x = x.transpose(1, 2)"),
        ("", "x = torch.transpose(x, 1, 2)"),
        ("", "x = x.swapaxes(1, 2)"),
        ("", "x = x.swapdims(1, 2)"),
    ],
    "mT": [("", "x = x @ x.transpose(-2, -1)"), ("", "x = x @ x.mT")],
    "permute <-> transpose name": [("", "x = x.permute(0, 2, 1)"), ("", "x = torch.permute(x, (0, 2, 1))")],
    "chunk <-> split": [
        ("", "a, b = x.chunk(2, dim=-1)\nx = a * b"),
        ("", "a, b = torch.chunk(x, 2, -1)\nx = a * b"),
        ("", "a, b = x.split(32, dim=-1)\nx = a * b"),
    ],
    "matmul forms": [("", "x = x @ x"), ("", "x = torch.matmul(x, x)"), ("", "x = x.matmul(x)")],
    "contiguous": [("", "x = x.transpose(1, 2).view(-1, 64)"), ("", "x = x.transpose(1, 2).contiguous().view(-1, 64)")],
    "dim keyword": [("", "x = F.softmax(x, dim=-1)"), ("", "x = F.softmax(x, -1)"), ("", "x = x.softmax(-1)")],
    "Sequential <-> named layers": [
        ("self.mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))", "x = self.mlp(x)"),
        ("self.up = nn.Linear(64, 64)\nself.down = nn.Linear(64, 64)", "x = self.down(F.relu(self.up(x)))"),
    ],
}


@pytest.mark.parametrize("row", sorted(ROWS))
def test_each_row_of_the_table_normalizes_to_one_program(row: str) -> None:
    digests = {_normalized(_model(init, forward)) for init, forward in ROWS[row]}
    assert len(digests) == 1, row


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("", "x = F.relu(x)"), ("", "x = F.gelu(x)")),  # another activation
        (("", "x = x.sum(-1, keepdim=True)"), ("", "x = x.mean(-1, keepdim=True)")),
        (("", "x = x @ x"), ("", "x = x * x")),  # matmul is not elementwise
        # A module field also read elsewhere (not only called) is left as it is.
        (("self.act = nn.GELU()", "x = self.act(x)\nprint(self.act)"), ("", "x = F.gelu(x)\nprint(F.gelu)")),
    ],
)
def test_look_alikes_that_compute_something_else_stay_apart(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert _normalized(_model(*a)) != _normalized(_model(*b))


def test_a_wrapper_module_is_unwrapped_even_when_padded() -> None:
    plain = _model("", "x = F.relu(x)")
    wrapped = plain.replace(
        "def build_model(ctx):\n    return Net(ctx.vocab_size)\n",
        "class Shell(nn.Module):\n"
        '    """Just a shell."""\n\n'
        "    def __init__(self, inner):\n        super().__init__()\n        self.inner = inner\n\n"
        "    def forward(self, x):\n        return self.inner(x)\n\n"
        "    def unused(self):\n        return 3\n\n\n"
        "def build_model(ctx):\n    return Shell(Net(ctx.vocab_size))\n",
    )
    assert _normalized(wrapped) == _normalized(plain)


def test_annotated_config_fields_are_normalized_like_attributes() -> None:
    config = (
        "from dataclasses import dataclass\n\n\n@dataclass\nclass Config:\n"
        "    {a}: int = 64\n    {b}: int = 2\n\n\n"
        "def build_model(ctx):\n    cfg = Config()\n    return torch.nn.Linear(cfg.{a}, cfg.{b})\n"
    )
    one = HEAD + config.format(a="hidden", b="layers")
    two = HEAD + config.format(a="width", b="depth")
    assert _normalized(one) == _normalized(two)
