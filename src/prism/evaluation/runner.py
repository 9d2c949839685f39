"""The host side of the phases: stage a run, hand it to any `Sandbox`, accept only what checks out.

For each phase the runner writes the project to a fresh world-readable temp directory (the only
time submitted files touch the host's disk; they are never imported here), the phase's job spec
to `/job`, and exactly one split of the locked data to `/data` (train for `train`, validation for
`heldout`, none for `inspect`). The harness's report is the last `RESULT_PREFIX` line of stdout;
every artifact it names must be in /artifacts with the sha256 it reported. A verified copy of each
is kept under `work_dir/<phase>/verified/`, where the next phase and validation read it.

Sandbox infrastructure errors (`SandboxError`) propagate: the worker retries those.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prism.evaluation.errors import EvaluationRejected, HarnessProtocolError, MinerCodeFailed
from prism.evaluation.jobs import EvaluationJob
from prism.evaluation.phase import (
    GRAPH_FILE,
    HELDOUT_CURVE_FILE,
    JOB_FILE,
    JOB_MOUNT,
    LOSS_CURVE_FILE,
    RESULT_PREFIX,
    WEIGHTS_FILE,
    Phase,
    PhaseSpec,
    ShardRef,
)
from prism.evaluation.results import HeldoutResult, InspectResult, TrainResult
from prism.evidence import Evidence, evidence_from_json
from prism.intake.project import Project
from prism.sandbox.spec import DATA_MOUNT, SUBMISSION_MOUNT, Limits, Mount, RunResult, RunSpec, Sandbox

MANIFEST_FILE = "prism_run_manifest.v1.json"
HARNESS_COMMAND = ("python3", "-m", "prism.evaluation.harness")
# Slack between the harness's own watchdog and the sandbox's hard timeout: start-up, imports,
# fetching weights. The harness stops gracefully first; the sandbox kills only a stuck run.
SANDBOX_SLACK_SECONDS = 120.0
MAX_PLANTED_MANIFEST_BYTES = 1024 * 1024


def verified_artifact(job: EvaluationJob, phase: Phase, name: str) -> Path:
    return job.work_dir / phase / "verified" / name


def phase_spec(
    job: EvaluationJob, phase: Phase, shards: tuple[ShardRef, ...] = (), weights_sha256: str = ""
) -> PhaseSpec:
    budget = job.budget
    return PhaseSpec(
        phase=phase,
        entrypoint="",  # filled in by _run with the project's entrypoint
        seed=budget.seed,
        data_order_seed=budget.data_order_seed,
        probe_seed=job.probe_seed,
        seq_len=budget.seq_len,
        batch_size=budget.batch_size,
        token_budget=job.token_budget,
        wall_clock_seconds=job.wall_clock_seconds,
        heldout_tokens=budget.heldout_tokens,
        parameter_cap=job.parameter_cap,
        device=job.device,
        threads=job.threads,
        shards=shards,
        weights_sha256=weights_sha256,
        probe_count=budget.causality_probes,
        first_batch_floor_bpb=budget.first_batch_floor_bpb,
        causality_atol=budget.causality_atol,
        causality_rtol=budget.causality_rtol,
    )


def _world_readable_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def write_project(project: Project, dest: Path) -> None:
    """Write the project's files (text only, validated relative paths) for a read-only mount."""
    for rel, text in project.files.items():
        target = (dest / rel).resolve()
        if not target.is_relative_to(dest.resolve()):
            raise HarnessProtocolError(f"project path {rel!r} escapes its directory")
        for parent in reversed(target.relative_to(dest.resolve()).parents):
            _world_readable_dir(dest / parent)
        target.write_text(text, encoding="utf-8")
        target.chmod(0o644)


def _read_on_disk(directory: Path, name: str) -> bytes | None:
    """A regular file left in the artifacts directory, never following a link the sandbox planted."""
    try:
        fd = os.open(directory / name, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not os.path.isfile(f"/proc/self/fd/{handle.fileno()}"):
            return None
        return handle.read()


def _report(result: RunResult, phase: Phase) -> dict[str, Any]:
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        if result.timed_out:
            raise MinerCodeFailed("timeout", f"the {phase} run exceeded its wall-clock limit")
        if result.oom_killed:
            raise MinerCodeFailed("out_of_memory", f"the {phase} run exceeded its memory limit")
        tail = result.stderr[-2000:]
        raise HarnessProtocolError(f"the {phase} harness reported nothing (exit {result.exit_code}): {tail}")
    try:
        report = json.loads(lines[-1][len(RESULT_PREFIX) :])
    except json.JSONDecodeError as exc:
        raise HarnessProtocolError(f"the {phase} harness report is not JSON: {exc}") from exc
    if not isinstance(report, dict) or report.get("phase") != phase:
        raise HarnessProtocolError(f"the {phase} harness report is for another phase")
    status = report.get("status")
    if status == "rejected":
        evidence = evidence_from_json(report.get("evidence") or []) or (
            Evidence.at(f"harness.{report.get('reason_code')}", "<evaluation>", 0, str(report.get("detail"))),
        )
        raise EvaluationRejected(str(report.get("reason_code")), evidence)
    if status == "failed":
        if report.get("reason_code") == "infrastructure":
            raise HarnessProtocolError(f"{phase}: {report.get('detail')}")
        raise MinerCodeFailed(str(report.get("reason_code")), str(report.get("detail")))
    if status != "ok" or not isinstance(report.get("figures"), dict):
        raise HarnessProtocolError(f"the {phase} harness report has status {status!r}")
    figures: dict[str, Any] = report["figures"]
    return figures


def _collect(
    job: EvaluationJob, phase: Phase, result: RunResult, artifacts_dir: Path, expected: Mapping[str, str]
) -> dict[str, Any]:
    """Verify the artifacts the harness named; note everything else found in /artifacts."""
    verified = _world_readable_dir(job.work_dir / phase / "verified")
    for name, digest in expected.items():
        data = result.artifacts.get(name)
        if data is None and name in result.artifacts_left_on_disk:
            data = _read_on_disk(artifacts_dir, name)
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            raise EvaluationRejected(
                "artifact_tampered",
                (
                    Evidence.at(
                        "manifest.artifacts",
                        name,
                        0,
                        f"{name} in /artifacts does not match the sha256 the harness recorded",
                    ),
                ),
            )
        (verified / name).write_bytes(data)
    names = set(result.artifacts) | set(result.artifacts_left_on_disk) | set(result.artifacts_skipped)
    foreign = tuple(sorted(names - set(expected)))
    planted = None
    if MANIFEST_FILE in result.artifacts and len(result.artifacts[MANIFEST_FILE]) <= MAX_PLANTED_MANIFEST_BYTES:
        planted = result.artifacts[MANIFEST_FILE].decode("utf-8", errors="replace")
    return {"foreign_artifacts": foreign, "planted_manifest": planted}


def _run(
    job: EvaluationJob,
    project: Project,
    sandbox: Sandbox,
    spec: PhaseSpec,
    *,
    data_dir: Path | None,
    extra_job_files: Mapping[str, Path] = {},
) -> tuple[dict[str, Any], RunResult, Path]:
    phase_dir = job.work_dir / spec.phase
    if phase_dir.exists():
        shutil.rmtree(phase_dir)  # a resumed job reruns the phase from scratch
    _world_readable_dir(phase_dir)
    job_dir = _world_readable_dir(phase_dir / "job")
    artifacts_dir = phase_dir / "artifacts"
    artifacts_dir.mkdir()
    artifacts_dir.chmod(0o777)  # the sandbox uid writes here; the backend may tighten ownership
    spec = PhaseSpec.from_json({**spec.to_json(), "entrypoint": project.entrypoint})
    (job_dir / JOB_FILE).write_text(json.dumps(spec.to_json(), sort_keys=True), encoding="utf-8")
    for name, source in extra_job_files.items():
        shutil.copyfile(source, job_dir / name)
    for entry in job_dir.iterdir():
        entry.chmod(0o444)
    project_dir = Path(tempfile.mkdtemp(prefix="prism-project-"))
    try:
        project_dir.chmod(0o755)
        write_project(project, project_dir)
        mounts = [Mount(project_dir, SUBMISSION_MOUNT), Mount(job_dir, JOB_MOUNT)]
        if data_dir is not None:
            mounts.append(Mount(data_dir, DATA_MOUNT))
        run_spec = RunSpec(
            command=HARNESS_COMMAND,
            mounts=tuple(mounts),
            artifacts_dir=artifacts_dir,
            env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
            limits=Limits(
                cpus=job.cpus,
                memory_bytes=job.memory_bytes,
                memory_swap_bytes=job.memory_swap_bytes,
                pids=job.pids,
                tmpfs_bytes=job.tmpfs_bytes,
                gpu_count=job.gpu_count,
                gpu_type=job.gpu_type,
                timeout_seconds=job.wall_clock_seconds + spec.grace_seconds + SANDBOX_SLACK_SECONDS,
                artifacts_bytes=max(512 * 1024**2, 8 * job.parameter_cap + 64 * 1024**2),
            ),
            labels={
                "prism.submission": job.submission_id[:200],
                "prism.phase": spec.phase,
                "prism.attempt": str(job.attempt),
            },
        )
        result = sandbox.run(run_spec)
    finally:
        shutil.rmtree(project_dir, ignore_errors=True)
    return _report(result, spec.phase), result, artifacts_dir


def _stage(job: EvaluationJob, phase: Phase, split: str) -> tuple[Path, tuple[ShardRef, ...]]:
    data_dir = job.work_dir / f"{phase}-data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    _world_readable_dir(data_dir)
    shards = job.dataset.stage_split("train" if split == "train" else "validation", data_dir)
    return data_dir, tuple(ShardRef(path=s.path, sha256=s.sha256, size=s.size) for s in shards)


def run_inspect(job: EvaluationJob, project: Project, sandbox: Sandbox) -> InspectResult:
    figures, result, artifacts_dir = _run(job, project, sandbox, phase_spec(job, "inspect"), data_dir=None)
    extra = _collect(job, "inspect", result, artifacts_dir, {GRAPH_FILE: str(figures.get("architecture_graph_sha256"))})
    try:
        inspect = InspectResult.from_json({**figures, **extra})
    except TypeError as exc:
        raise HarnessProtocolError(f"the inspect report is incomplete: {exc}") from exc
    if inspect.parameter_count > job.parameter_cap:  # the harness checks too; the host never relies on it
        raise EvaluationRejected(
            "parameter_cap",
            (
                Evidence.at(
                    "evaluation.parameter_cap",
                    project.entrypoint,
                    0,
                    f"{inspect.parameter_count:,} parameters exceed the cap of {job.parameter_cap:,}",
                ),
            ),
        )
    return inspect


def run_train(job: EvaluationJob, project: Project, sandbox: Sandbox, inspect: InspectResult) -> TrainResult:
    data_dir, shards = _stage(job, "train", "train")
    try:
        figures, result, artifacts_dir = _run(
            job, project, sandbox, phase_spec(job, "train", shards), data_dir=data_dir
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    expected = {
        LOSS_CURVE_FILE: str(figures.get("loss_curve_sha256")),
        WEIGHTS_FILE: str(figures.get("weights_sha256")),
    }
    extra = _collect(job, "train", result, artifacts_dir, expected)
    try:
        return TrainResult.from_json({**figures, **extra})
    except TypeError as exc:
        raise HarnessProtocolError(f"the train report is incomplete: {exc}") from exc


def run_heldout(job: EvaluationJob, project: Project, sandbox: Sandbox, train: TrainResult) -> HeldoutResult:
    weights = verified_artifact(job, "train", WEIGHTS_FILE)
    if not weights.is_file():
        raise HarnessProtocolError(f"the trained weights are missing from {weights}")
    data_dir, shards = _stage(job, "heldout", "validation")
    spec = phase_spec(job, "heldout", shards, weights_sha256=train.weights_sha256)
    try:
        figures, result, artifacts_dir = _run(
            job, project, sandbox, spec, data_dir=data_dir, extra_job_files={WEIGHTS_FILE: weights}
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    extra = _collect(
        job, "heldout", result, artifacts_dir, {HELDOUT_CURVE_FILE: str(figures.get("heldout_curve_sha256"))}
    )
    try:
        return HeldoutResult.from_json({**figures, **extra})
    except TypeError as exc:
        raise HarnessProtocolError(f"the heldout report is incomplete: {exc}") from exc
