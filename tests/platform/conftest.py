"""Fixtures for the Platform-wire tests: a project folder and an empty artifacts folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir(mode=0o755)
    (project / "model.py").write_text("VALUE = 42\n")
    (project / "model.py").chmod(0o644)
    (tmp_path / "artifacts").mkdir()
    return tmp_path
