"""The metric's red-team corpus: a model of each class that games the number, and honest controls.

Every cheat here passes static review (ordinary PyTorch only) and used to come out accepted with
a forged or gamed figure. Each must now end rejected by the harness or quarantined by the host's
suspicions, with a reason code that names its class; the honest controls must pass untouched.

The recorder runs in this test process (`harness.run_phase`), the models in their own processes
through the same spawn path as in production; the cases run a few at a time to keep the suite
short.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch

from prism.evaluation.data import LockedDataset, ensure_fixture_dataset
from prism.evaluation.harness import run_phase
from prism.evaluation.phase import PhaseReport, PhaseSpec, ShardRef
from prism.evaluation.results import InspectResult, TrainResult
from prism.evaluation.suspicion import suspicions
from prism.evaluation.weights import encode_safetensors

pytestmark = pytest.mark.slow
CHEATS = Path(__file__).parent / "cheats"
SPEC = PhaseSpec(
    phase="inspect",
    entrypoint="model.py",
    seed=1234,
    data_order_seed=7,
    probe_seed=4242,
    seq_len=32,
    batch_size=4,
    token_budget=12 * 128,
    wall_clock_seconds=240,
    heldout_tokens=6 * 128,
    parameter_cap=200_000,
    device="cpu",
    threads=1,
    replay_fraction=0.5,
)


@dataclass(frozen=True)
class Case:
    model: str
    phases: tuple[str, ...]
    # Reason codes that name the class: a harness rejection, or the host's first suspicion.
    codes: frozenset[str]


CASES: dict[str, Case] = {
    "tolerance in the wrong units": Case("offset_peek", ("inspect",), frozenset({"causality_violation"})),
    "rows that see each other": Case("row_leak", ("inspect",), frozenset({"row_leak"})),
    "probe answered from a cache": Case(
        "probe_cache", ("train",), frozenset({"causality_violation", "replay_mismatch"})
    ),
    "call counter": Case("call_counter", ("train",), frozenset({"replay_mismatch", "causality_violation"})),
    "tracing detected (fx)": Case("fx_trace_detection", ("inspect",), frozenset({"causality_violation"})),
    "recording detected (dispatch mode)": Case("dispatch_detection", ("train",), frozenset({"replay_mismatch"})),
    "uncounted: Python list": Case("python_list", ("train",), frozenset({"replay_mismatch"})),
    "uncounted: grad-requiring buffers": Case("grad_buffers", ("inspect",), frozenset({"parameter_cap_state"})),
    "uncounted: overridden parameters()": Case(
        "overridden_parameters", ("inspect",), frozenset({"parameter_cap_state", "parameter_count_mismatch"})
    ),
    "uncounted: float64-packed": Case("float64_packed", ("inspect",), frozenset({"parameter_cap_state"})),
    "knowledge brought in": Case("embedded_constants", ("train",), frozenset({"contamination.first_batch"})),
    "widens on text": Case("widen_on_text", ("inspect", "train"), frozenset({"budget.work_mismatch", "graph.unbound"})),
    "four optimizer steps per batch": Case("multi_step", ("train",), frozenset({"budget.optimizer_steps"})),
    "held-out that adapts": Case("heldout_adapt", ("heldout",), frozenset({"heldout_adaptation"})),
}
HONEST = ("honest_base", "honest_rope_cached")


def _project(root: Path, model: str) -> Path:
    project = root / f"project-{model}"
    project.mkdir(exist_ok=True)
    shutil.copyfile(CHEATS / f"{model}.py", project / "model.py")
    return project


def _initial_weights(model: str, path: Path) -> Path:
    """The model's state under the forced seed, as the trained weights held-out loads."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"corpus_{model}", CHEATS / f"{model}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Ctx:
        vocab_size, seq_len, batch_size = 256, SPEC.seq_len, SPEC.batch_size

    torch.manual_seed(SPEC.seed)
    path.write_bytes(encode_safetensors(module.build_model(Ctx()).state_dict()))
    return path


def _run(root: Path, dataset: LockedDataset, model: str, phase: str) -> PhaseReport:
    base = root / f"{model}-{phase}"
    job, data, artifacts = base / "job", base / "data", base / "artifacts"
    for d in (job, data, artifacts):
        d.mkdir(parents=True)
    overrides: dict[str, Any] = {"phase": phase}
    if phase != "inspect":
        staged = dataset.stage_split("validation" if phase == "heldout" else "train", data)
        overrides["shards"] = tuple(ShardRef(path=s.path, sha256=s.sha256, size=s.size) for s in staged)
    if phase == "heldout":
        weights = _initial_weights(model, job / "weights.safetensors")
        overrides["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    spec = replace(SPEC, **overrides)
    return run_phase(spec, data=data, submission=_project(root, model), artifacts=artifacts, job_dir=job)


def _outcome(reports: Mapping[str, PhaseReport]) -> tuple[str, str, dict[str, Any]]:
    """(status, reason code, figures): the first non-ok phase, else the host's suspicions."""
    for report in reports.values():
        if report.status != "ok":
            return report.status, report.reason_code, dict(report.figures)
    train = reports.get("train")
    if train is None:
        return "ok", "", {}
    figures = dict(train.figures)
    inspect_report = reports.get("inspect")
    inspect_figures = dict(inspect_report.figures) if inspect_report else {}
    inspect = InspectResult(
        duration_seconds=0.0,
        parameter_count=int(figures["parameter_count"]),
        buffer_count=int(figures["buffer_count"]),
        architecture_graph_hash=str(figures["graph_hash"]),
        architecture_graph_sha256="",
        dataflow_source="executed_ops",
        # Without an inspect run, charge what the replica measured (only work_mismatch needs inspect).
        flops_per_token=float(inspect_figures.get("flops_per_token", figures["replayed_flops_per_token"])),
    )
    found = suspicions(inspect, TrainResult.from_json({**figures, "duration_seconds": 0.0}), None)
    return ("quarantined", found[0].rule_id, figures) if found else ("ok", "", figures)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("metric-corpus")
    dataset = ensure_fixture_dataset(root / "dataset")
    jobs = {name: case for name, case in CASES.items()} | {
        name: Case(name, ("inspect", "train"), frozenset()) for name in HONEST
    }

    def judge(case: Case) -> tuple[str, str, dict[str, Any]]:
        reports: dict[str, PhaseReport] = {}
        for phase in case.phases:
            reports[phase] = _run(root, dataset, case.model, phase)
            if reports[phase].status != "ok":
                break
        return _outcome(reports)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(judge, case) for name, case in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_class_ends_rejected_or_quarantined_by_its_rule(
    corpus: dict[str, tuple[str, str, dict[str, Any]]], name: str
) -> None:
    status, code, figures = corpus[name]
    assert status in {"rejected", "quarantined"}, (name, status, code, figures)
    assert code in CASES[name].codes, (name, status, code, figures)


@pytest.mark.parametrize("name", HONEST)
def test_honest_models_pass_with_bit_exact_replays(
    corpus: dict[str, tuple[str, str, dict[str, Any]]], name: str
) -> None:
    status, code, figures = corpus[name]
    assert (status, code) == ("ok", ""), figures
    assert figures["replay_max_change_nats"] == 0.0 and len(figures["replayed_steps"]) >= 3
    assert 7.5 < figures["first_batch_bits_per_byte"] < 8.5  # the forced seed: no knowledge yet
    assert figures["bits_per_byte"] < figures["first_batch_bits_per_byte"]
