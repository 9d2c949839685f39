"""The host side of the phases: stage a run, hand it to any `Sandbox`, accept only what checks out.

For each phase the runner writes the project to a fresh world-readable temp directory (the only
time submitted files touch the host's disk; they are never imported here), the phase's job spec
to `/job`, and the phase's data (`train_data`, `heldout_window`): for `train`, the train split
staged at `/data`, or nothing where the sandbox backend says the platform mounts Platform's train
split itself (then the spec lists its shards and the recorder reads them there); for `heldout`,
only the held-out window of the validation split, in `/job`; none for `inspect`. The harness's
report is the last `RESULT_PREFIX` line of stdout; every artifact it names must be in /artifacts
with the sha256 it reported. A verified copy of each is kept under `work_dir/<phase>/verified/`,
where the next phase and validation read it.

Where the backend can hold them, the three phases share one sandbox start (`joint.py`), built
from the same pieces here (`stage_job_dir`, `harness_run_spec`, `sandbox_run`, `accepted_report`,
`collect_artifacts`); the functions below run one phase a start.

Sandbox infrastructure errors (`SandboxError`) propagate: the worker retries those, as it does
an authenticated `infrastructure` report; an unauthenticated outcome is the miner's failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from prism.evaluation.errors import DatasetError, EvaluationRejected, HarnessProtocolError, MinerCodeFailed
from prism.evaluation.jobs import EvaluationJob
from prism.evaluation.phase import (
    DATA_IN_JOB,
    DATA_MOUNTED,
    DATA_STAGED,
    GRAPH_FILE,
    HELDOUT_CURVE_FILE,
    HELDOUT_WINDOW_FILE,
    JOB_FILE,
    JOB_MOUNT,
    KEY_BYTES,
    LOSS_CURVE_FILE,
    REPORT_KEY_FILE,
    RESULT_PREFIX,
    WEIGHTS_FILE,
    Phase,
    PhaseSpec,
    ShardRef,
    next_spec_file,
    verify_report_line,
)
from prism.evaluation.platform_data import platform_source
from prism.evaluation.prefork import POOL_SIZE
from prism.evaluation.progress import ProgressPoint, ProgressTap
from prism.evaluation.results import HeldoutResult, InspectResult, TrainResult
from prism.evidence import Evidence, evidence_from_json
from prism.intake.project import Project
from prism.sandbox.spec import DATA_MOUNT, SUBMISSION_MOUNT, Limits, Mount, RunResult, RunSpec, Sandbox

MANIFEST_FILE = "prism_run_manifest.v1.json"
HARNESS_COMMAND = ("python3", "-m", "prism.evaluation.harness")
# Slack between the harness's own watchdog and the sandbox's hard timeout: start-up, imports,
# fetching weights. The harness stops gracefully first; the sandbox kills only a stuck run.
SANDBOX_SLACK_SECONDS = 300.0
MAX_PLANTED_MANIFEST_BYTES = 1024 * 1024
# The recorder's environment. One OpenMP thread: with more, `import torch` starts a thread pool,
# and a threaded recorder cannot fork the model's processes (`prefork`), which then pay their own
# interpreter and torch; each model process sets the job's threads itself. Passive waiting: the
# model's process and its replica share the job's cores, and OpenMP threads that spin while they
# wait take CPU from the other one (read at `import torch`, so the forked children inherit it).
RECORDER_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}
# How much longer than its budget a phase may take in wall clock on a busy host before the
# recorder calls it `host_starved` (budgets are charged in the model's own time, see fairtime.py).
STARVATION_FACTOR = 4.0
GRACE_SECONDS = 30.0


def outer_wall_seconds(wall_clock_seconds: float) -> float:
    return (wall_clock_seconds + GRACE_SECONDS) * STARVATION_FACTOR


def verified_artifact(job: EvaluationJob, phase: Phase, name: str) -> Path:
    return job.work_dir / phase / "verified" / name


def phase_spec(
    job: EvaluationJob,
    phase: Phase,
    shards: tuple[ShardRef, ...] = (),
    weights_sha256: str = "",
    *,
    data_source: str = DATA_STAGED,
    mount_dir: str = "",
    source_shards: tuple[ShardRef, ...] = (),
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
        require_walls=job.score_eligible,
        outer_wall_seconds=outer_wall_seconds(job.wall_clock_seconds),
        data_source=data_source,
        mount_dir=mount_dir,
        source_shards=source_shards,
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


def accepted_report(
    result: RunResult, phase: Phase, key: bytes, *, lines: list[str] | None = None, last: bool = True
) -> dict[str, Any]:
    """The recorder's report, accepted only as exactly one MAC-valid line from a sandbox that exited 0.

    Anything else is what a submission that reached the report stream, or stopped, killed or
    starved its recorder, would produce, so it is the miner's failure with the figures, never an
    infrastructure retry: our own faults arrive as an authenticated `infrastructure` report.
    `lines`: this phase's report lines as the live tap saw them (a run of several phases); the
    sandbox's end speaks for the `last` phase only, since the recorder went on after the others.
    """
    if lines is None:
        lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    where = f"the {phase} run (exit {result.exit_code}, {result.duration_seconds:.1f}s)"
    if last and result.timed_out:
        raise MinerCodeFailed("timeout", f"{where} exceeded the sandbox's outer wall-clock limit")
    if last and result.oom_killed:
        raise MinerCodeFailed("out_of_memory", f"{where} exceeded its memory limit")
    if not lines:
        raise MinerCodeFailed("no_report", f"{where} ended without a report: the recorder was stopped or killed")
    if len(lines) > 1:
        raise MinerCodeFailed("report_tampered", f"{where} carried {len(lines)} result lines; the recorder writes one")
    body = verify_report_line(key, phase, lines[0])
    if body is None:
        raise MinerCodeFailed("report_forged", f"{where}: the result line's MAC is not the recorder's")
    if last and result.exit_code != 0:
        raise MinerCodeFailed("recorder_killed", f"{where}: the sandbox did not exit 0 after the report")
    return report_figures(body, phase)


def report_figures(body: str, phase: Phase) -> dict[str, Any]:
    """The figures of a verified report body; a rule broken or a failure becomes its exception."""
    try:
        report = json.loads(body)
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


def _deliver_key(sandbox: Sandbox, job_dir: Path, key: bytes) -> bytes:
    """The key on the sandbox's stdin where the backend has one; else a file in /job.

    The Platform broker has no stdin: there the key is `/job/report.key`, which the model's
    process cannot open (its Landlock domain grants no read under /job); the recorder reads it
    before the model's process starts.
    """
    if getattr(sandbox, "accepts_stdin", False):
        return key.hex().encode() + b"\n"
    (job_dir / REPORT_KEY_FILE).write_text(key.hex(), encoding="ascii")
    return b""


def collect_artifacts(
    job: EvaluationJob,
    phase: Phase,
    result: RunResult,
    artifacts_dir: Path,
    expected: Mapping[str, str],
    ours: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Verify the artifacts the harness named; note everything else found in /artifacts (but
    `ours`: what the other phases of the same run named)."""
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
    foreign = tuple(sorted(names - set(expected) - ours))
    planted = None
    if MANIFEST_FILE in result.artifacts and len(result.artifacts[MANIFEST_FILE]) <= MAX_PLANTED_MANIFEST_BYTES:
        planted = result.artifacts[MANIFEST_FILE].decode("utf-8", errors="replace")
    return {"foreign_artifacts": foreign, "planted_manifest": planted}


def stage_job_dir(
    job: EvaluationJob, name: str, sandbox: Sandbox, specs: Sequence[PhaseSpec], extra_job_files: Mapping[str, Path]
) -> tuple[Path, Path, bytes, bytes]:
    """A fresh `work_dir/<name>` with the run's /job (first spec as `job.json`, the others under
    their phase's name) and an empty /artifacts; returns both, the key and the stdin to send."""
    run_dir = job.work_dir / name
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a resumed job reruns the phase from scratch
    _world_readable_dir(run_dir)
    job_dir = _world_readable_dir(run_dir / "job")
    artifacts_dir = run_dir / "artifacts"
    artifacts_dir.mkdir()
    artifacts_dir.chmod(0o777)  # the sandbox uid writes here; the backend may tighten ownership
    for index, spec in enumerate(specs):
        target = JOB_FILE if index == 0 else next_spec_file(spec.phase)
        (job_dir / target).write_text(json.dumps(spec.to_json(), sort_keys=True), encoding="utf-8")
    for file_name, source in extra_job_files.items():
        shutil.copyfile(source, job_dir / file_name)
    key = secrets.token_bytes(KEY_BYTES)
    stdin = _deliver_key(sandbox, job_dir, key)
    for entry in job_dir.iterdir():
        entry.chmod(0o444)
    return job_dir, artifacts_dir, key, stdin


def harness_run_spec(
    job: EvaluationJob,
    label: str,
    *,
    mounts: Sequence[Mount],
    artifacts_dir: Path,
    stdin: bytes,
    timeout_seconds: float,
    pool: int = POOL_SIZE,
    stdout_tap: Callable[[bytes], None] | None = None,
    stdin_reply: Callable[[], bytes] | None = None,
) -> RunSpec:
    return RunSpec(
        command=(*HARNESS_COMMAND, "--pool", str(pool)),
        mounts=tuple(mounts),
        artifacts_dir=artifacts_dir,
        env=RECORDER_ENV,
        stdin=stdin,
        stdout_tap=stdout_tap,
        stdin_reply=stdin_reply,
        limits=Limits(
            cpus=job.cpus,
            memory_bytes=job.memory_bytes,
            memory_swap_bytes=job.memory_swap_bytes,
            pids=job.pids,
            tmpfs_bytes=job.tmpfs_bytes,
            gpu_count=job.gpu_count,
            gpu_type=job.gpu_type,
            timeout_seconds=timeout_seconds,
            artifacts_bytes=max(512 * 1024**2, 8 * job.parameter_cap + 64 * 1024**2),
        ),
        labels={"prism.submission": job.submission_id[:200], "prism.phase": label, "prism.attempt": str(job.attempt)},
    )


def sandbox_run(project: Project, sandbox: Sandbox, spec_for: Callable[[Path], RunSpec]) -> RunResult:
    """Write the project to a fresh world-readable directory (removed after) and run
    `spec_for(project_dir)` in the sandbox: the only time submitted files touch the host's disk."""
    project_dir = Path(tempfile.mkdtemp(prefix="prism-project-"))
    try:
        project_dir.chmod(0o755)
        write_project(project, project_dir)
        return sandbox.run(spec_for(project_dir))
    finally:
        shutil.rmtree(project_dir, ignore_errors=True)


def mounts_for(project_dir: Path, job_dir: Path, data_dir: Path | None) -> list[Mount]:
    mounts = [Mount(project_dir, SUBMISSION_MOUNT), Mount(job_dir, JOB_MOUNT)]
    if data_dir is not None:
        mounts.append(Mount(data_dir, DATA_MOUNT))
    return mounts


def _run(
    job: EvaluationJob,
    project: Project,
    sandbox: Sandbox,
    spec: PhaseSpec,
    *,
    data_dir: Path | None,
    extra_job_files: Mapping[str, Path] = {},
    on_progress: Callable[[ProgressPoint], None] | None = None,
) -> tuple[dict[str, Any], RunResult, Path]:
    spec = replace(spec, entrypoint=project.entrypoint)
    job_dir, artifacts_dir, key, stdin = stage_job_dir(job, spec.phase, sandbox, [spec], extra_job_files)
    result = sandbox_run(
        project,
        sandbox,
        lambda project_dir: harness_run_spec(
            job,
            spec.phase,
            mounts=mounts_for(project_dir, job_dir, data_dir),
            artifacts_dir=artifacts_dir,
            stdin=stdin,
            timeout_seconds=spec.outer_wall_seconds + SANDBOX_SLACK_SECONDS,
            # The recorder's live points, verified under this phase's key (advisory, `progress.py`).
            stdout_tap=None if on_progress is None else ProgressTap(key, spec.phase, on_progress),
        ),
    )
    return accepted_report(result, spec.phase, key), result, artifacts_dir


# -- the data of each phase ----------------------------------------------------------------------


def _stage(job: EvaluationJob, phase: Phase, split: str) -> tuple[Path, tuple[ShardRef, ...]]:
    data_dir = job.work_dir / f"{phase}-data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    _world_readable_dir(data_dir)
    shards = job.dataset.stage_split("train" if split == "train" else "validation", data_dir)
    return data_dir, tuple(ShardRef(path=s.path, sha256=s.sha256, size=s.size) for s in shards)


def train_data(job: EvaluationJob, sandbox: Sandbox) -> tuple[Path | None, PhaseSpec]:
    """The train phase's spec, and the directory to mount at /data (None: nothing to mount).

    Where the backend runs every job with Platform's train split mounted read-only
    (`sandbox.train_mount`, the broker on Platform) and the dataset was locked from Platform's
    manifest, nothing is staged: the spec lists Platform's shards, each with its size and sha256,
    and the recorder builds the tokens from them there, checked against the locked shards.
    """
    mount = getattr(sandbox, "train_mount", None)
    source = platform_source(job.dataset) if mount else None
    if mount and source is not None:
        listed = source.splits.get("train", ())
        if not listed:
            raise DatasetError(f"the Platform manifest of dataset {job.dataset.fingerprint[:12]} lists no train shards")
        sources = tuple(ShardRef(path=s.name, sha256=s.sha256, size=s.size) for s in listed)
        shards = tuple(ShardRef(path=s.path, sha256=s.sha256, size=s.size) for s in job.dataset.manifest.split("train"))
        spec = phase_spec(job, "train", shards, data_source=DATA_MOUNTED, mount_dir=mount, source_shards=sources)
        return None, spec
    data_dir, staged = _stage(job, "train", "train")
    return data_dir, phase_spec(job, "train", staged)


def heldout_window_bytes(job: EvaluationJob) -> int:
    """How many bytes of the validation split the held-out phase scores: its whole batches plus the
    last target. The recorder's windows over these bytes are the ones it would take over the split."""
    per_batch = job.budget.batch_size * job.budget.seq_len
    return (job.budget.heldout_tokens // per_batch) * per_batch + 1


def heldout_window(job: EvaluationJob) -> tuple[Path, ShardRef]:
    """The start of the validation split the held-out phase scores, cut here from the locked shards
    (each checked again): the split itself never enters a sandbox, only this window, in /job."""
    wanted = heldout_window_bytes(job)
    window = bytearray()
    for shard in job.dataset.manifest.split("validation"):
        if len(window) >= wanted:
            break
        raw = (job.dataset.root / shard.path).read_bytes()
        if len(raw) != shard.size or hashlib.sha256(raw).hexdigest() != shard.sha256:
            raise DatasetError(f"shard {shard.path} changed after the dataset was locked")
        window += raw[: wanted - len(window)]
    if not window:
        raise DatasetError(f"dataset {job.dataset.fingerprint[:12]} has no validation shards")
    path = job.work_dir / HELDOUT_WINDOW_FILE
    path.write_bytes(window)
    return path, ShardRef(path=HELDOUT_WINDOW_FILE, sha256=hashlib.sha256(window).hexdigest(), size=len(window))


def inspect_result(
    job: EvaluationJob, project: Project, figures: Mapping[str, Any], extra: Mapping[str, Any]
) -> InspectResult:
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


def train_result(figures: Mapping[str, Any], extra: Mapping[str, Any]) -> TrainResult:
    try:
        return TrainResult.from_json({**figures, **extra})
    except TypeError as exc:
        raise HarnessProtocolError(f"the train report is incomplete: {exc}") from exc


def heldout_result(figures: Mapping[str, Any], extra: Mapping[str, Any]) -> HeldoutResult:
    try:
        return HeldoutResult.from_json({**figures, **extra})
    except TypeError as exc:
        raise HarnessProtocolError(f"the heldout report is incomplete: {exc}") from exc


def expected_artifacts(phase: Phase, figures: Mapping[str, Any]) -> dict[str, str]:
    """The artifacts a phase's report names, with the sha256 each must have."""
    if phase == "inspect":
        return {GRAPH_FILE: str(figures.get("architecture_graph_sha256"))}
    if phase == "train":
        return {
            LOSS_CURVE_FILE: str(figures.get("loss_curve_sha256")),
            WEIGHTS_FILE: str(figures.get("weights_sha256")),
        }
    return {HELDOUT_CURVE_FILE: str(figures.get("heldout_curve_sha256"))}


def run_inspect(job: EvaluationJob, project: Project, sandbox: Sandbox) -> InspectResult:
    figures, result, artifacts_dir = _run(job, project, sandbox, phase_spec(job, "inspect"), data_dir=None)
    extra = collect_artifacts(job, "inspect", result, artifacts_dir, expected_artifacts("inspect", figures))
    return inspect_result(job, project, figures, extra)


def run_train(
    job: EvaluationJob,
    project: Project,
    sandbox: Sandbox,
    inspect: InspectResult,
    *,
    on_progress: Callable[[ProgressPoint], None] | None = None,
) -> TrainResult:
    data_dir, spec = train_data(job, sandbox)
    try:
        figures, result, artifacts_dir = _run(job, project, sandbox, spec, data_dir=data_dir, on_progress=on_progress)
    finally:
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    extra = collect_artifacts(job, "train", result, artifacts_dir, expected_artifacts("train", figures))
    return train_result(figures, extra)


def run_heldout(job: EvaluationJob, project: Project, sandbox: Sandbox, train: TrainResult) -> HeldoutResult:
    weights = verified_artifact(job, "train", WEIGHTS_FILE)
    if not weights.is_file():
        raise HarnessProtocolError(f"the trained weights are missing from {weights}")
    window, shard = heldout_window(job)
    spec = phase_spec(job, "heldout", (shard,), weights_sha256=train.weights_sha256, data_source=DATA_IN_JOB)
    try:
        figures, result, artifacts_dir = _run(
            job,
            project,
            sandbox,
            spec,
            data_dir=None,
            extra_job_files={WEIGHTS_FILE: weights, HELDOUT_WINDOW_FILE: window},
        )
    finally:
        window.unlink(missing_ok=True)
    extra = collect_artifacts(job, "heldout", result, artifacts_dir, expected_artifacts("heldout", figures))
    return heldout_result(figures, extra)
