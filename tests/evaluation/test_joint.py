"""One sandbox start for a whole evaluation (`joint`): the same figures as a start per phase, and
nothing trained before the host's answer at the gate. Through the real bubblewrap backend."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prism.config import Settings
from prism.evaluation.data import LockedDataset
from prism.evaluation.errors import HarnessProtocolError, MinerCodeFailed
from prism.evaluation.harness import await_go
from prism.evaluation.jobs import EvaluationJob, make_job
from prism.evaluation.joint import JointResults, _Reports, run_joint, runs_jointly
from prism.evaluation.phase import GO_LINE, GRAPH_FILE, RESULT_PREFIX, Phase, report_line, split_report_line
from prism.evaluation.progress import ProgressPoint, progress_line
from prism.evaluation.results import InspectResult
from prism.evaluation.runner import run_heldout, run_inspect, run_train, verified_artifact
from prism.intake.project import Project
from prism.runtime_config import EvaluationBudget, RuntimeConfig
from prism.sandbox import get_sandbox
from prism.sandbox.spec import RunResult, RunSpec
from tests.counted_sandbox import Counted

from .conftest import EXAMPLE

CAN_SANDBOX = shutil.which("bwrap") is not None and os.geteuid() == 0
CONFIG = RuntimeConfig(
    evaluation=EvaluationBudget(seq_len=64, batch_size=4, smoke_token_budget=8192, heldout_tokens=4096, smoke_cpus=2)
)
KEY = bytes(range(32))
ARTIFACTS: tuple[tuple[Phase, str], ...] = (
    ("inspect", GRAPH_FILE),
    ("train", "weights.safetensors"),
    ("heldout", "heldout_curve.json"),
)


def in_sandbox(test: Any) -> Any:
    marks = (
        pytest.mark.sandbox,
        pytest.mark.slow,
        pytest.mark.skipif(not CAN_SANDBOX, reason="needs bubblewrap and root"),
    )
    for mark in marks:
        test = mark(test)
    return test


def _job(tmp_path: Path, dataset: LockedDataset, name: str) -> EvaluationJob:
    work = tmp_path / name
    work.mkdir(mode=0o755)
    return make_job(
        submission_id=name,
        code_hash="c" * 64,
        mode="local_cpu_smoke",
        runtime_config=CONFIG,
        dataset=dataset,
        work_dir=work,
    )


def _example() -> Project:
    return Project(files={"model.py": (EXAMPLE / "model.py").read_text()})


def test_only_backends_with_stdin_and_live_stdout_hold_a_joint_run() -> None:
    @dataclass
    class Broker:  # Platform's broker: no stdin, stdout only once the job has ended
        name: str = "broker"

        def run(self, spec: RunSpec) -> RunResult:
            raise AssertionError("never run")

    @dataclass
    class Live(Broker):
        accepts_stdin: bool = True
        live_stdout: bool = True

    assert not runs_jointly(Broker()) and runs_jointly(Live())


@in_sandbox
def test_one_start_scores_exactly_what_three_starts_score(tmp_path: Path, fixture_dataset: LockedDataset) -> None:
    sandbox = Counted(get_sandbox(Settings(data_dir=tmp_path / "data")))
    points: list[ProgressPoint] = []
    together = _job(tmp_path, fixture_dataset, "joint")
    joint = run_joint(together, _example(), sandbox, on_progress=points.append)
    assert sandbox.labels == ["joint"]
    # Every model process of the evaluation was forked from the one recorder's pool (none exec'd).
    reports = [
        json.loads(split_report_line(line)[0])
        for line in sandbox.stdout[0].splitlines()
        if line.startswith(RESULT_PREFIX)
    ]
    assert [r["phase"] for r in reports] == ["inspect", "train", "heldout"]
    assert all(r["figures"]["walls"]["started"] == "fork" for r in reports)

    job = _job(tmp_path, fixture_dataset, "separate")
    inspect = run_inspect(job, _example(), sandbox)
    train = run_train(job, _example(), sandbox, inspect)
    heldout = run_heldout(job, _example(), sandbox, train)
    assert sandbox.labels == ["joint", "inspect", "train", "heldout"]

    assert joint.inspect.architecture_graph_hash == inspect.architecture_graph_hash
    assert joint.inspect.parameter_count == inspect.parameter_count
    assert joint.trained().bits_per_byte == train.bits_per_byte
    assert joint.trained().weights_sha256 == train.weights_sha256
    assert joint.scored().heldout_bits_per_byte == heldout.heldout_bits_per_byte
    assert joint.scored().weights_sha256 == train.weights_sha256
    # Each phase's artifacts verified where the next step and validation read them; none foreign.
    for phase, name in ARTIFACTS:
        assert verified_artifact(together, phase, name).is_file()
    assert joint.inspect.foreign_artifacts == () and joint.trained().foreign_artifacts == ()
    assert points and points[-1].step == points[-1].steps


@in_sandbox
def test_nothing_is_trained_before_the_gate_and_a_stop_ends_the_run(
    tmp_path: Path, fixture_dataset: LockedDataset
) -> None:
    sandbox = Counted(get_sandbox(Settings(data_dir=tmp_path / "data")))
    job = _job(tmp_path, fixture_dataset, "stopped")
    points: list[ProgressPoint] = []
    asked: list[tuple[InspectResult, dict[str, Any], int]] = []

    def gate(inspect: InspectResult, graph: dict[str, Any]) -> bool:
        asked.append((inspect, graph, len(points)))
        return False

    results = run_joint(job, _example(), sandbox, gate=gate, on_progress=points.append)
    assert results.stopped_at_gate and results.heldout is None and not points
    ((inspect, graph, seen_points),) = asked
    assert seen_points == 0
    assert inspect.architecture_graph_hash == results.inspect.architecture_graph_hash
    # The graph the host decided on is, byte for byte, the artifact verified after the run.
    stored = verified_artifact(job, "inspect", GRAPH_FILE).read_bytes()
    assert json.loads(stored) == graph
    assert hashlib.sha256(stored).hexdigest() == results.inspect.architecture_graph_sha256
    assert not (job.work_dir / "train").exists()
    with pytest.raises(HarnessProtocolError):
        results.trained()


@in_sandbox
def test_past_the_gate_training_starts_only_after_the_answer(tmp_path: Path, fixture_dataset: LockedDataset) -> None:
    sandbox = Counted(get_sandbox(Settings(data_dir=tmp_path / "data")))
    points: list[ProgressPoint] = []
    seen: list[int] = []

    def gate(inspect: InspectResult, graph: dict[str, Any]) -> bool:
        seen.append(len(points))
        return True

    results = run_joint(_job(tmp_path, fixture_dataset, "gone-on"), _example(), sandbox, gate=gate,
                        on_progress=points.append)  # fmt: skip
    assert seen == [0] and points
    assert results.trained().steps > 0 and results.scored().heldout_bits_per_byte > 0


def test_a_failed_phase_is_kept_for_its_step_and_ends_the_run() -> None:
    failure = MinerCodeFailed("crashed", "the model's process exited with code 1")
    results = JointResults(inspect=_inspect(), train=failure, heldout=None)
    with pytest.raises(MinerCodeFailed):
        results.trained()
    with pytest.raises(HarnessProtocolError):
        results.scored()


def _inspect() -> InspectResult:
    return InspectResult(
        parameter_count=10,
        buffer_count=0,
        architecture_graph_hash="a" * 64,
        architecture_graph_sha256="a" * 64,
        dataflow_source="",
        flops_per_token=1.0,
        duration_seconds=0.0,
    )


def test_report_lines_go_to_the_phase_whose_mac_they_carry() -> None:
    points: list[ProgressPoint] = []
    reports = _Reports(KEY, points.append)
    inspect = report_line(KEY, "inspect", '{"phase": "inspect"}') + "\n"
    train = report_line(KEY, "train", '{"phase": "train"}') + "\n"
    forged = report_line(bytes(32), "heldout", '{"phase": "heldout"}') + "\n"
    point = ProgressPoint(phase="train", seq=1, step=1, steps=4, tokens=256, bits_per_byte=7.0, mean_bits_per_byte=7.0)
    stream = (inspect + progress_line(KEY, point) + "\n" + train + forged).encode()
    for at in range(0, len(stream), 7):  # in small chunks, as a pipe may deliver them
        reports(stream[at : at + 7])
    assert reports.inspect_seen.is_set()
    assert reports.of("inspect") == [inspect.strip()] and reports.of("train") == [train.strip()]
    # A line under no phase's MAC counts against the phase then due: held-out is refused as forged.
    assert reports.of("heldout") == [forged.strip()]
    assert reports.reported_after("inspect") and not reports.reported_after("heldout")
    assert [p.seq for p in points] == [1]


def test_the_recorder_goes_on_only_on_the_hosts_go() -> None:
    for written, expected in ((GO_LINE, True), (b"stop\n", False), (b"", False), (b"go", False)):
        read, write = os.pipe()
        os.write(write, written)
        os.close(write)
        try:
            assert await_go(read) is expected, written
        finally:
            os.close(read)
    assert await_go(None) is False
