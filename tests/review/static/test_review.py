"""Static review: ordinary PyTorch idioms pass; each finding carries evidence; all findings are collected."""

from __future__ import annotations

import pytest

from prism.config import Settings
from prism.evidence import sha256_text
from prism.intake.project import Project, ProjectConfig
from prism.review.static import StaticPolicy, review_project

CONTRACT = "\n\ndef build_model(ctx):\n    return None\n"


def rules(source: str, **files: str) -> set[str]:
    project = Project(files={"model.py": source + CONTRACT, **files})
    return {f.rule_id for f in review_project(project).findings}


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ndef f(self, input):\n    return input + 1\n",
        "def f(self):\n    return getattr(self, 'weight', None)\n",
        "def f(self, i):\n    return getattr(self, f'layer_{i}')\n",
        "import torch.nn.functional as F\ndef f():\n    return hasattr(F, 'scaled_dot_product_attention')\n",
        "import torch\nclass A(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.register_buffer('pos', torch.arange(4))\n    def forward(self, x):\n        return x.T @ x\n",
        "from dataclasses import dataclass, field\n@dataclass\nclass C:\n"
        "    sizes: list[int] = field(default_factory=list)\n",
        "import torch\nclass M:\n    @torch.no_grad()\n    def g(self):\n        return 1\n"
        "    @staticmethod\n    def s():\n        return 2\n"
        "    @property\n    def p(self):\n        return 3\n    @p.setter\n    def p(self, v):\n        self._p = v\n",
        "import math\nSCALE = 1 / math.sqrt(64)\nNAMES = ('a', 'b')\nMASK = -float('inf')\n",
        "def f(x):\n    assert x.dim() == 2, f'bad shape {tuple(x.shape)}'\n    raise ValueError('x')\n",
        "def f(xs):\n    return {k: v for k, v in zip(xs, xs)}, [x for x in xs if x], '{:.3f}'.format(1.0)\n",
        "import torch\ndef f(q, k):\n    return torch.einsum('bhqd,bhkd->bhqk', q, k).type(torch.float16)\n",
        "if __name__ == '__main__':\n    print(build_model(None))\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from torch import Tensor\n",
        "class Cache:\n    def __init__(self):\n        self._store = {}\n"
        "    def get(self, other):\n        return other._store\n",
        # A dataclass field may be named like a builtin: only its class body sees that name.
        "from dataclasses import dataclass\n@dataclass\nclass Cfg:\n    max: float = 1.0\nLIMIT = max(1, 2)\n",
        "import torch\ndef train_step(model, batch, optimizer, ctx):\n"
        "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n",
    ],
)
def test_ordinary_code_is_accepted(source: str) -> None:
    assert rules(source) == set()


def test_all_findings_across_files_are_collected() -> None:
    project = Project(
        files={
            "model.py": "import os\nimport helper\ndef f(x):\n    return eval(x)\n" + CONTRACT,
            "helper.py": "def g(t):\n    return t.__class__\ndef h():\n    return open('x')\n",
        }
    )
    report = review_project(project)
    seen = {(f.path, f.rule_id) for f in report.findings}
    assert {
        ("model.py", "static.import.forbidden"),
        ("model.py", "static.name.forbidden"),
        ("helper.py", "static.attribute.dunder"),
        ("helper.py", "static.name.forbidden"),
    } <= seen
    assert not report.accepted


def test_evidence_points_at_the_exact_snippet() -> None:
    source = "def f(x):\n    return x.__globals__\n"
    report = review_project(Project(files={"model.py": source + CONTRACT}))
    (finding,) = report.findings
    assert (finding.rule_id, finding.path, finding.line, finding.column) == (
        "static.attribute.dunder",
        "model.py",
        2,
        11,
    )
    assert finding.snippet_sha256 == sha256_text("x.__globals__")


def test_contract_applies_to_the_entrypoint_only() -> None:
    project = Project(
        files={"main.py": "def build_model(ctx):\n    return None\n", "util.py": "X = 1\n"},
        config=ProjectConfig(entrypoint="main.py"),
    )
    assert review_project(project).accepted
    project = Project(files={"main.py": "X = 1\n"}, config=ProjectConfig(entrypoint="main.py"))
    assert {f.rule_id for f in review_project(project).findings} == {"contract.missing_build_model"}


def test_contract_may_be_reexported_from_a_project_module() -> None:
    project = Project(
        files={
            "model.py": "from impl.core import build_model\n",
            "impl/core.py": "def build_model(ctx):\n    return 1\n",
        }
    )
    assert review_project(project).accepted
    project = Project(
        files={"model.py": "from impl import build_model\n", "impl.py": "def build_model():\n    return 1\n"}
    )
    assert {f.rule_id for f in review_project(project).findings} == {"contract.signature"}


def test_local_binding_does_not_hide_a_builtin_in_another_scope() -> None:
    assert "static.name.forbidden" in rules("def a(open):\n    return open\ndef b():\n    return open('x')\n")


def test_policy_from_settings_and_literal_limits() -> None:
    policy = StaticPolicy.from_settings(Settings(max_literal_elements=4, max_literal_string_bytes=10))
    assert (policy.max_literal_elements, policy.max_literal_string_bytes) == (4, 10)
    project = Project(files={"model.py": "X = [1, 2, 3, 4, 5]\nY = 'abcdefghijkl'\n" + CONTRACT})
    found = {f.rule_id for f in review_project(project, policy=policy).findings}
    assert found == {"static.literal.elements", "static.literal.size"}
    assert review_project(project).accepted


def test_docstrings_are_exempt_from_literal_limits() -> None:
    doc = '"""' + "A long explanation. " * 400 + '"""\n'
    assert rules(doc) == set()


def test_deeply_nested_code_is_a_finding_not_a_crash() -> None:
    source = "X = " + "(" * 50 + "1" + ")" * 50 + "\n" + "def f(a):\n    return a" + ".b" * 5000 + "\n"
    assert isinstance(rules(source), set)
