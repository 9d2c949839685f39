"""Shared fixtures: a real bubblewrap sandbox on this host, and a fresh job directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.sandbox.helpers import RunPy

from prism.config import Settings
from prism.sandbox.bubblewrap import BubblewrapSandbox
from prism.sandbox.spec import SUBMISSION_MOUNT, Limits, Mount, RunResult, RunSpec


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir(mode=0o755)
    (project / "model.py").write_text("VALUE = 42\n")
    (project / "model.py").chmod(0o644)
    (tmp_path / "artifacts").mkdir()
    return tmp_path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "prism-data")


@pytest.fixture
def sandbox(settings: Settings) -> BubblewrapSandbox:
    return BubblewrapSandbox(settings)


_DEFAULTS: dict[str, object] = {"timeout_seconds": 30.0, "memory_bytes": 512 << 20, "memory_swap_bytes": 512 << 20}


@pytest.fixture
def run_py(sandbox: BubblewrapSandbox, job_dir: Path) -> RunPy:
    def run(code: str, *, redact: tuple[str, ...] = (), **limits: object) -> RunResult:
        spec = RunSpec(
            command=("python3", "-c", code),
            mounts=(Mount(job_dir / "project", SUBMISSION_MOUNT),),
            artifacts_dir=job_dir / "artifacts",
            limits=Limits(**{**_DEFAULTS, **limits}),  # type: ignore[arg-type]
            redact=redact,
        )
        return sandbox.run(spec)

    return run
