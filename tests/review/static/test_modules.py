"""The stored module table matches the installed torch, rendered in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_module_table_is_current() -> None:
    rendered = subprocess.run(
        [sys.executable, "-W", "ignore", str(ROOT / "tests/review/static/modules_gen.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    ).stdout
    stored = (ROOT / "src/prism/review/static/modules.py").read_text(encoding="utf-8")
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "-"], input=rendered, capture_output=True, text=True, check=True
    ).stdout
    assert formatted == stored, "run tests/review/static/modules_gen.py to regenerate the table"
