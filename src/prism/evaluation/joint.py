"""The phases of one evaluation in one sandbox start: inspect, then train, then held-out.

Why: each sandbox start pays an interpreter, `import torch` and TorchDynamo in the recorder,
about two seconds of CPU, so three phases in three starts cost more than a small model's whole
training. Run together, the recorder imports once and forks every model process of the
evaluation from itself before it reads anything secret (`prefork`, pool of five). Each phase
keeps what it had: its own spec, fresh model processes behind the same walls, its own report
line under its own phase's MAC, its own verified artifacts under `work_dir/<phase>/verified`.

The gate: with `gate`, the run stops between inspect and train until the host answers on the
job's stdin (`RunSpec.stdin_reply`). The host reads the inspect report as it arrives (the live
stdout tap), accepts it as it accepts any inspect report, and calls `gate` with it and the graph
(the pipeline's graph-duplicate decision). Nothing is trained before the answer; `False` stops
the run there.

Where a backend cannot do this (no stdin or no live stdout: the Platform broker), or held-out
runs on another sandbox, or validators train, the phases run one sandbox start each (`runner`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from prism.evaluation.errors import EvaluationError, HarnessProtocolError
from prism.evaluation.jobs import EvaluationJob
from prism.evaluation.phase import (
    DATA_IN_JOB,
    GO_LINE,
    HELDOUT_WINDOW_FILE,
    PHASES,
    RESULT_PREFIX,
    Phase,
    verify_report_line,
)
from prism.evaluation.progress import Lines, ProgressPoint, ProgressTap
from prism.evaluation.results import HeldoutResult, InspectResult, TrainResult
from prism.evaluation.runner import (
    SANDBOX_SLACK_SECONDS,
    accepted_report,
    collect_artifacts,
    expected_artifacts,
    harness_run_spec,
    heldout_result,
    heldout_window,
    inspect_result,
    mounts_for,
    phase_spec,
    sandbox_run,
    stage_job_dir,
    train_data,
    train_result,
)
from prism.intake.project import Project
from prism.sandbox.spec import Sandbox

# The graph rides inline in a gated inspect report (at most the wire's 8 MiB JSON frame, escaped).
MAX_REPORT_LINE_BYTES = 32 * 1024 * 1024
POOL = 5  # model processes: one for inspect, the model and its replica for train and for held-out
Gate = Callable[[InspectResult, dict[str, Any]], bool]
_R = TypeVar("_R", TrainResult, HeldoutResult)


def runs_jointly(sandbox: Sandbox) -> bool:
    """Whether this backend can hold the phases in one start: stdin, and stdout seen live."""
    return bool(getattr(sandbox, "accepts_stdin", False)) and bool(getattr(sandbox, "live_stdout", False))


@dataclass(frozen=True, slots=True)
class JointResults:
    """What one start produced. A later phase holds its result, the error it ended with, or None
    where it did not run (stopped at the gate)."""

    inspect: InspectResult
    train: TrainResult | EvaluationError | None
    heldout: HeldoutResult | EvaluationError | None

    @property
    def stopped_at_gate(self) -> bool:
        return self.train is None

    def trained(self) -> TrainResult:
        return _value(self.train, "train")

    def scored(self) -> HeldoutResult:
        return _value(self.heldout, "heldout")


def _value(found: _R | EvaluationError | None, phase: str) -> _R:
    if isinstance(found, EvaluationError):
        raise found
    if found is None:
        raise HarnessProtocolError(f"the {phase} phase did not run in this start")
    return found


class _Reports:
    """The live tap: each report line, attributed to the phase whose MAC it carries, and the
    progress points of training. A line no phase's MAC verifies counts against the phase then due
    (so the acceptance rules call it tampered or forged, as they would in a start of its own)."""

    def __init__(self, key: bytes, on_progress: Callable[[ProgressPoint], None] | None) -> None:
        self.key = key
        self.lines: dict[Phase, list[str]] = {phase: [] for phase in PHASES}
        self.inspect_seen = threading.Event()
        self._progress = None if on_progress is None else ProgressTap(key, "train", on_progress)
        self._lines = Lines(MAX_REPORT_LINE_BYTES)
        self._lock = threading.Lock()

    def __call__(self, chunk: bytes) -> None:
        if self._progress is not None:
            self._progress(chunk)
        for raw in self._lines.feed(chunk):
            if raw.startswith(RESULT_PREFIX.encode()):
                self._line(raw.decode("utf-8", errors="replace"))

    def _line(self, line: str) -> None:
        with self._lock:
            verified = [p for p in PHASES if verify_report_line(self.key, p, line) is not None]
            due: list[Phase] = [p for p in PHASES if not self.lines[p]] or ["heldout"]
            phase = (verified or due)[0]
            self.lines[phase].append(line)
        if phase == "inspect":
            self.inspect_seen.set()

    def of(self, phase: Phase) -> list[str]:
        with self._lock:
            return list(self.lines[phase])

    def reported_after(self, phase: Phase) -> bool:
        with self._lock:
            return any(self.lines[p] for p in PHASES[PHASES.index(phase) + 1 :])


class _Answer:
    """The host's side of the gate, on the backend's stdin thread: wait for inspect's report,
    accept it, decide, answer. Its errors are kept for the caller (raised after the run)."""

    def __init__(self, job: EvaluationJob, project: Project, reports: _Reports, gate: Gate) -> None:
        self.job, self.project, self.reports, self.gate = job, project, reports, gate
        self.ended = False
        self.went_on = False
        self.error: BaseException | None = None
        self.called = False
        self.answered = threading.Event()

    def __call__(self) -> bytes:
        self.called = True
        try:
            return self._answer()
        finally:
            self.answered.set()

    def _answer(self) -> bytes:
        self.reports.inspect_seen.wait()
        if self.ended:
            return b""
        try:
            lines = self.reports.of("inspect")
            if len(lines) != 1:
                return b""
            body = verify_report_line(self.reports.key, "inspect", lines[0])
            figures = json.loads(body or "{}").get("figures") or {}
            graph_json = str(figures.pop("architecture_graph_json", ""))
            inspect = inspect_result(self.job, self.project, figures, {})
            graph = _graph(graph_json, inspect)
            self.went_on = bool(self.gate(inspect, graph))
        except EvaluationError:
            return b""  # the same report is refused again, with its reason, once the run is over
        except BaseException as exc:  # the decision's own failure (the database): the caller's to raise
            self.error = exc
            return b""
        return GO_LINE if self.went_on else b"stop\n"

    def end(self) -> None:
        """The run is over: an answer not begun is not given; one being decided is waited for
        (a sandbox killed mid-decision must not leave the decision running behind its caller)."""
        self.ended = True
        self.reports.inspect_seen.set()
        if self.called:
            self.answered.wait()


def _graph(text: str, inspect: InspectResult) -> dict[str, Any]:
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != inspect.architecture_graph_sha256:
        raise HarnessProtocolError("the graph in the inspect report does not match its sha256")
    graph: dict[str, Any] = json.loads(text)
    return graph


def run_joint(
    job: EvaluationJob,
    project: Project,
    sandbox: Sandbox,
    *,
    gate: Gate | None = None,
    on_progress: Callable[[ProgressPoint], None] | None = None,
) -> JointResults:
    """Inspect, then (past the gate, if any) train and held-out, in one start of `sandbox`.

    Raises what `run_inspect` raises for inspect; later phases' errors are in the results, so a
    caller can record inspect (and its gate decision) before it hears how training went.
    """
    entry = project.entrypoint
    data_dir, train_spec = train_data(job, sandbox)
    window, shard = heldout_window(job)
    try:
        inspect_spec = replace(
            phase_spec(job, "inspect"), entrypoint=entry, then=("train", "heldout"), gated=gate is not None
        )
        heldout_spec = phase_spec(job, "heldout", (shard,), data_source=DATA_IN_JOB)  # weights: the recorder's own
        specs = [inspect_spec, replace(train_spec, entrypoint=entry), replace(heldout_spec, entrypoint=entry)]
        job_dir, artifacts_dir, key, stdin = stage_job_dir(job, "joint", sandbox, specs, {HELDOUT_WINDOW_FILE: window})
        reports = _Reports(key, on_progress)
        answer = None if gate is None else _Answer(job, project, reports, gate)
        try:
            result = sandbox_run(
                project,
                sandbox,
                lambda project_dir: harness_run_spec(
                    job,
                    "joint",
                    mounts=mounts_for(project_dir, job_dir, data_dir),
                    artifacts_dir=artifacts_dir,
                    stdin=stdin,
                    timeout_seconds=sum(spec.outer_wall_seconds for spec in specs) + SANDBOX_SLACK_SECONDS,
                    pool=POOL,
                    stdout_tap=reports,
                    stdin_reply=answer,
                ),
            )
        finally:
            if answer is not None:
                answer.end()
    finally:
        window.unlink(missing_ok=True)
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    if answer is not None and answer.error is not None:
        raise answer.error

    def accepted(phase: Phase) -> tuple[dict[str, Any], dict[str, Any]]:
        # The sandbox's end speaks for the phase no later one followed (the recorder went on after the others).
        last = not reports.reported_after(phase)
        figures = accepted_report(result, phase, key, lines=reports.of(phase), last=last)
        figures.pop("architecture_graph_json", None)
        return figures, collect_artifacts(
            job, phase, result, artifacts_dir, expected_artifacts(phase, figures), frozenset(ours)
        )

    ours: set[str] = set()
    for phase in PHASES:  # every name a verified report gave is PRISM's, never foreign to another phase
        for line in reports.of(phase)[:1]:
            body = verify_report_line(key, phase, line)
            figures = json.loads(body).get("figures") if body else None
            if isinstance(figures, dict):
                ours.update(expected_artifacts(phase, figures))
    inspect = inspect_result(job, project, *accepted("inspect"))
    if answer is not None and not answer.went_on:
        return JointResults(inspect, None, None)
    try:
        train = train_result(*accepted("train"))
    except EvaluationError as exc:
        return JointResults(inspect, exc, None)
    try:
        heldout = heldout_result(*accepted("heldout"))
        if heldout.weights_sha256 != train.weights_sha256:
            raise HarnessProtocolError("the held-out phase scored other weights than the train phase wrote")
    except EvaluationError as exc:
        return JointResults(inspect, train, exc)
    return JointResults(inspect, train, heldout)
