"""`prism-worker --interval-seconds 5`: the worker sidecar command Platform's install script runs."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from prism.cli.platform_worker import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_sidecar_command_runs_prisms_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["prism-worker"] == "prism.cli.platform_worker:main"
    monkeypatch.setenv("CHALLENGE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/prism.sqlite3")
    monkeypatch.delenv("PRISM_DATABASE_URL", raising=False)
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PRISM_WORKER_POLL_SECONDS", raising=False)
    with pytest.raises(SystemExit) as done:
        main(["--interval-seconds", "5", "--once"])
    assert done.value.code in (0, None)
    assert os.environ["PRISM_WORKER_POLL_SECONDS"] == "5.0"
    assert "queue is empty" in capsys.readouterr().out
    assert (tmp_path / "prism.sqlite3").is_file()  # Platform's async URL, opened with the sync driver
    with pytest.raises(SystemExit) as refused:
        main(["--interval-seconds", "0"])
    assert refused.value.code == 2
