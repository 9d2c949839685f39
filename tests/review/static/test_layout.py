"""Imports resolve as the harness runs them: the entrypoint's folder first, then the root."""

from __future__ import annotations

from prism.intake.project import Project, ProjectConfig
from prism.review.static import review_project

NET = "from layers import Block\n\ndef build_model(ctx):\n    return Block()\n"
LAYERS = "from torch import nn\n\nclass Block(nn.Module):\n    pass\n"


def _review(files: dict[str, str], entrypoint: str) -> set[tuple[str, str]]:
    report = review_project(Project(files=files, config=ProjectConfig(entrypoint=entrypoint)))
    return {(f.rule_id, f.path) for f in report.findings}


def test_sibling_of_a_subfolder_entrypoint_is_a_project_module() -> None:
    assert _review({"src/net.py": NET, "src/layers.py": LAYERS}, "src/net.py") == set()
    # From the root the same file is `src.layers`; both spellings are the project's.
    root_style = "from src.layers import Block\n\ndef build_model(ctx):\n    return Block()\n"
    assert _review({"src/net.py": root_style, "src/layers.py": LAYERS}, "src/net.py") == set()


def test_contract_re_exported_from_a_sibling() -> None:
    files = {"src/net.py": "from impl import build_model\n", "src/impl.py": "def build_model(ctx):\n    return None\n"}
    assert _review(files, "src/net.py") == set()


def test_a_name_in_both_folders_is_refused() -> None:
    files = {"src/net.py": NET, "src/layers.py": LAYERS, "layers.py": LAYERS}
    assert ("static.shadowing", "layers.py") in _review(files, "src/net.py")


def test_entry_folder_module_may_not_shadow_the_standard_library() -> None:
    files = {"src/net.py": "def build_model(ctx):\n    return None\n", "src/math.py": "X = 1\n"}
    assert ("static.shadowing", "src/math.py") in _review(files, "src/net.py")


def test_a_package_beside_a_module_of_its_name_is_refused() -> None:
    files = {"model.py": "def build_model(ctx):\n    return None\n", "model/__init__.py": "X = 1\n"}
    assert ("static.shadowing", "model.py") in _review(files, "model.py")
    # A folder of other files (a namespace package) does not win over the module.
    files = {"model.py": "def build_model(ctx):\n    return None\n", "model/data.py": "X = 1\n"}
    assert _review(files, "model.py") == set()


def test_unknown_module_from_a_subfolder_entrypoint_is_still_refused() -> None:
    assert ("static.import.forbidden", "src/net.py") in _review({"src/net.py": NET}, "src/net.py")
