"""Shared helpers: the fixture dataset, projects on disk, and the harness run as a plain subprocess."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from prism.evaluation.data import LockedDataset, ensure_fixture_dataset
from prism.evaluation.phase import RESULT_PREFIX, PhaseSpec, ShardRef, verify_report_line

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tiny_transformer"
CHEATS = Path(__file__).resolve().parent / "cheats"

SMALL_SPEC = PhaseSpec(
    phase="inspect",
    entrypoint="model.py",
    seed=1234,
    data_order_seed=7,
    probe_seed=99,
    seq_len=64,
    batch_size=4,
    token_budget=2048,
    wall_clock_seconds=60,
    heldout_tokens=1024,
    parameter_cap=1_000_000,
    device="cpu",
    threads=1,
    probe_count=2,
)


@pytest.fixture(scope="session")
def fixture_dataset(tmp_path_factory: pytest.TempPathFactory) -> LockedDataset:
    return ensure_fixture_dataset(tmp_path_factory.mktemp("fixture") / "dataset")


def cheat_project(tmp_path: Path, name: str) -> Path:
    project = tmp_path / f"project-{name}"
    project.mkdir()
    shutil.copyfile(CHEATS / f"{name}.py", project / "model.py")
    return project


HarnessRunner = Callable[..., dict[str, Any]]


@pytest.fixture
def run_harness(tmp_path: Path, fixture_dataset: LockedDataset) -> HarnessRunner:
    """Run one phase of `python -m prism.evaluation.harness` with directories standing in for mounts."""

    def run(
        phase: str, submission: Path, *, weights: Path | None = None, hash_seed: str | None = "0", **overrides: Any
    ) -> dict[str, Any]:
        base = tmp_path / f"run-{phase}-{len(list(tmp_path.iterdir()))}"
        job, data, artifacts = base / "job", base / "data", base / "artifacts"
        for d in (job, data, artifacts):
            d.mkdir(parents=True)
        shards: tuple[ShardRef, ...] = ()
        if phase != "inspect":
            staged = fixture_dataset.stage_split("validation" if phase == "heldout" else "train", data)
            shards = tuple(ShardRef(path=s.path, sha256=s.sha256, size=s.size) for s in staged)
        extra: dict[str, Any] = {}
        if weights is not None:
            import hashlib

            shutil.copyfile(weights, job / "weights.safetensors")
            extra["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        spec = replace(SMALL_SPEC, **{"phase": phase, "shards": shards, **extra, **overrides})
        (job / "job.json").write_text(json.dumps(spec.to_json()))
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src")}
        if hash_seed is not None:  # as the runner sets it; without, model processes are exec'd
            env["PYTHONHASHSEED"] = hash_seed
        key = secrets.token_bytes(32)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "prism.evaluation.harness",
                "--job",
                str(job / "job.json"),
                "--data",
                str(data),
                "--submission",
                str(submission),
                "--artifacts",
                str(artifacts),
            ],
            input=key.hex() + "\n",
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        assert len(lines) == 1 and proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
        body = verify_report_line(key, phase, lines[0])
        assert body is not None, "the report's MAC does not verify"
        report: dict[str, Any] = json.loads(body)
        report["artifacts_dir"] = str(artifacts)
        return report

    return run
