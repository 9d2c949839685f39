"""End to end through the real bubblewrap backend: `get_sandbox(settings)`, nothing stood in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from prism.config import Settings
from prism.evaluation.data import LockedDataset
from prism.evaluation.evaluate import evaluate_project
from prism.evaluation.progress import ProgressPoint
from prism.intake.project import Project
from prism.runtime_config import EvaluationBudget, RuntimeConfig
from prism.sandbox import get_sandbox

from .conftest import CHEATS, EXAMPLE

CAN_SANDBOX = shutil.which("bwrap") is not None and os.geteuid() == 0
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.slow,
    pytest.mark.skipif(not CAN_SANDBOX, reason="needs bubblewrap and root (for cgroups)"),
]
CONFIG = RuntimeConfig(
    evaluation=EvaluationBudget(seq_len=64, batch_size=4, smoke_token_budget=8192, heldout_tokens=4096, smoke_cpus=2)
)


def _project(path: Path) -> Project:
    return Project(files={"model.py": path.read_text()})


def test_example_is_accepted_and_learns(tmp_path: Path, fixture_dataset: LockedDataset) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    live: list[ProgressPoint] = []
    outcome = evaluate_project(
        _project(EXAMPLE / "model.py"),
        settings=settings,
        runtime_config=CONFIG,
        mode="local_cpu_smoke",
        sandbox=get_sandbox(settings),
        submission_id="e2e",
        dataset=fixture_dataset,
        work_dir=tmp_path / "work",
        on_progress=live.append,
    )
    assert outcome.decision == "accepted", outcome.to_json()
    manifest = outcome.manifest
    # The live points `prism evaluate` prints: in order, ending where the signed figure ends.
    assert len(live) >= 2 and [p.seq for p in live] == sorted(p.seq for p in live)
    assert live[-1].step == live[-1].steps and live[-1].tokens == manifest["compute"]["tokens"]
    assert abs(live[-1].mean_bits_per_byte - manifest["metrics"]["bits_per_byte"]) < 1e-5
    assert manifest["metrics"]["bits_per_byte"] < 6.5
    assert manifest["metrics"]["heldout_bits_per_byte"] < 5.0
    assert manifest["compute"]["tokens"] == 8192 and manifest["compute"]["gpu_count"] == 0
    assert manifest["validation"]["score_eligible"] is False
    assert manifest["dataset"]["fingerprint"] == fixture_dataset.fingerprint
    assert outcome.validation is not None and outcome.validation.ok


def test_cheat_is_rejected_inside_the_sandbox(tmp_path: Path, fixture_dataset: LockedDataset) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    outcome = evaluate_project(
        _project(CHEATS / "two_sided_conv.py"),
        settings=settings,
        runtime_config=CONFIG,
        mode="local_cpu_smoke",
        sandbox=get_sandbox(settings),
        dataset=fixture_dataset,
        work_dir=tmp_path / "work",
    )
    assert outcome.decision == "rejected"
    assert outcome.reason_code == "causality_violation"
    assert outcome.evidence[0].rule_id == "harness.causality_violation"
    assert not outcome.manifest
