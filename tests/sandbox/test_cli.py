"""`prism sandbox run` and `prism sandbox check` through the real CLI and the real backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.sandbox.helpers import needs_bwrap
from typer.testing import CliRunner

from prism.cli import app

pytestmark = [pytest.mark.sandbox, needs_bwrap]


def test_run_prints_the_result_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path / "data"))
    project = tmp_path / "project"
    (project / "__pycache__").mkdir(parents=True)
    (project / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"evil")
    (project / "model.py").write_text("import os\nprint(sorted(os.listdir('/submission')), os.getcwd())\n")
    result = CliRunner().invoke(
        app, ["sandbox", "run", "--project", str(project), "--timeout", "20", "--memory", "256m", "--json", "--",
              "python3", "model.py"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["stdout"] == "['model.py'] /submission\n"  # bytecode never reaches the sandbox
    assert data["timed_out"] is False and data["oom_killed"] is False and data["exit_code"] == 0


def test_run_exit_code_follows_the_job(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    result = CliRunner().invoke(
        app, ["sandbox", "run", "--project", str(project), "--timeout", "1", "--", "python3", "-c", "while True: pass"]
    )
    assert result.exit_code == 1 and "timed out" in result.output


@pytest.mark.slow
def test_check_passes_on_this_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["sandbox", "check"])
    assert result.exit_code == 0, result.output
    assert result.output.count("PASS") == 11 and "FAIL" not in result.output
    for wall in (
        "model jail: Landlock",
        "model jail: seccomp allowlist",
        "pid 1 and recorder unreachable",
        "report MAC",
    ):
        assert f"PASS  {wall}" in result.output
