"""An entrypoint in a subfolder imports its siblings as a script would, in review and at run time.

`prism.yaml` names `src/net.py`, which does `from layers import Block`: Python puts a script's
folder first on `sys.path`, and so does the harness (then the project root). Static review
resolves the import the same way (tests/review/static/test_layout.py); here the real harness
builds the model from that layout.
"""

from __future__ import annotations

from pathlib import Path

from .conftest import HarnessRunner

SRC_LAYOUT = Path(__file__).resolve().parents[1] / "redteam" / "benign" / "src_layout"


def test_subfolder_entrypoint_imports_its_sibling_module(run_harness: HarnessRunner) -> None:
    report = run_harness("inspect", SRC_LAYOUT, entrypoint="src/net.py")
    assert report["status"] == "ok", report
    assert report["figures"]["parameter_count"] > 0
