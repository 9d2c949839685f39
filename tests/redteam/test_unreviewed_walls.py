"""Hostile models run unreviewed (static and LLM review skipped): the walls alone must stop them.

Each model under `unreviewed/models/` attacks one wall the way issue 12 found it open: reading the
job spec or the data natively (`torch.from_file`, TorchScript, `PyTorchFileReader`), switching the
runtime guard off, forging the report through pid 1, signalling the recorder or pid 1, lying
about its parameters or graph. Each must end `failed` or `rejected` with a reason naming what
happened, never accepted, never scoring. Runs are tiny (2 training steps) and stop at the first
phase the attack fires in.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from prism.config import Settings
from prism.evaluation.data import LockedDataset, ensure_fixture_dataset
from prism.evaluation.evaluate import UnreviewedOfficialRun, evaluate_project
from prism.intake.project import Project
from prism.runtime_config import EvaluationBudget, RuntimeConfig
from prism.sandbox import get_sandbox

MODELS = Path(__file__).parent / "unreviewed" / "models"
CAN_SANDBOX = shutil.which("bwrap") is not None and os.geteuid() == 0
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not CAN_SANDBOX, reason="needs bubblewrap and root (for cgroups)"),
]
TINY = RuntimeConfig(
    evaluation=EvaluationBudget(
        seq_len=32, batch_size=2, smoke_token_budget=128, heldout_tokens=64, causality_probes=1, smoke_cpus=1
    )
)
# case -> (decision, reason_code, words the detail or evidence must contain)
EXPECTED = {
    "from_file_job_spec": ("failed", "jail_denied", "Permission denied"),
    "from_file_data": ("failed", "jail_denied", "Permission denied"),
    "torchscript_compilation_unit": ("failed", "jail_denied", "Permission denied"),
    "torchscript_parse_ir": ("failed", "jail_denied", "Permission denied"),
    "pytorch_file_reader": ("failed", "jail_denied", "Permission denied"),
    "disable_guard_read_job": ("failed", "jail_denied", "/job/job.json"),
    "forge_through_pid1_proc": ("failed", "jail_denied", "/proc/1/fd/1"),
    "forge_through_pidfd_getfd": ("failed", "forbidden_syscall", "SIGSYS"),
    "stop_the_recorder": ("failed", "forbidden_syscall", "SIGSYS"),
    "kill_pid1": ("failed", "forbidden_syscall", "SIGSYS"),
    "lying_numel": ("rejected", "parameter_count_mismatch", "the recorder counted"),
    "decoy_parameters": ("rejected", "parameter_count_mismatch", "the recorder counted"),
    "hidden_from_graph": ("rejected", "graph_mismatch", "big.weight"),
}


def test_every_model_has_an_expectation() -> None:
    cases = {p.stem for p in MODELS.glob("*.py")} - {"helpers"}
    assert cases == set(EXPECTED)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> LockedDataset:
    return ensure_fixture_dataset(tmp_path_factory.mktemp("fixture") / "dataset")


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_hostile_model_is_stopped_by_a_wall(case: str, tmp_path: Path, dataset: LockedDataset) -> None:
    project = Project(
        files={"model.py": (MODELS / f"{case}.py").read_text(), "helpers.py": (MODELS / "helpers.py").read_text()}
    )
    settings = Settings(data_dir=tmp_path / "data")
    outcome = evaluate_project(
        project,
        settings=settings,
        runtime_config=TINY,
        mode="local_cpu_smoke",
        sandbox=get_sandbox(settings),
        dataset=dataset,
        work_dir=tmp_path / "work",
        unreviewed=True,
    )
    decision, reason, words = EXPECTED[case]
    record = outcome.to_json()
    assert (outcome.decision, outcome.reason_code) == (decision, reason), record
    said = outcome.detail + " ".join(e.explanation for e in outcome.evidence)
    assert words in said, record
    assert record["unreviewed"] is True and record["scoring"] is False
    if decision == "rejected":
        assert outcome.evidence and outcome.evidence[0].rule_id == f"harness.{reason}"


def test_unreviewed_refuses_official(tmp_path: Path, dataset: LockedDataset) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(UnreviewedOfficialRun):
        evaluate_project(
            Project(files={"model.py": "def build_model(ctx):\n    return None\n"}),
            settings=settings,
            runtime_config=TINY,
            mode="official",
            sandbox=get_sandbox(settings),
            dataset=dataset,
            work_dir=tmp_path / "work",
            unreviewed=True,
        )
