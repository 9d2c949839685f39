"""One whole evaluation, as `prism evaluate` runs it: review, inspect, train, heldout, validation.

The worker strings the same steps together itself (persisting each result); this is the
synchronous path for an operator or a miner's local smoke run. Every outcome is a decision with
evidence: `accepted` (validated manifest), `rejected` (a rule broken, evidence attached) or
`quarantined` (figures no honest run produces, `suspicion`: an operator looks, never scored) or
`failed` (the miner's code crashed or timed out). Infrastructure errors propagate.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from prism.config import Settings
from prism.errors import PrismError
from prism.evaluation.data import MANIFEST_NAME, LockedDataset, ensure_fixture_dataset, load_locked_dataset
from prism.evaluation.errors import DatasetError, EvaluationRejected, MinerCodeFailed
from prism.evaluation.heldout_host import run_heldout_placed
from prism.evaluation.jobs import Mode, make_job
from prism.evaluation.joint import run_joint, runs_jointly
from prism.evaluation.manifest import ValidationReport, build_manifest, validate_manifest
from prism.evaluation.platform_data import FINEWEB_EDU_PIN, is_platform_layout, platform_dataset
from prism.evaluation.progress import ProgressPoint
from prism.evaluation.runner import run_inspect, run_train
from prism.evaluation.suspicion import suspicions
from prism.evidence import Evidence, evidence_to_json
from prism.intake.project import Project
from prism.runtime_config import RuntimeConfig
from prism.sandbox.spec import Sandbox

Decision = Literal["accepted", "rejected", "quarantined", "failed"]


class UnreviewedOfficialRun(PrismError):
    """`official` mode was asked of a run that skipped review."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationOutcome:
    decision: Decision
    reason_code: str = ""
    evidence: tuple[Evidence, ...] = ()
    manifest: dict[str, Any] = field(default_factory=dict)
    validation: ValidationReport | None = None
    detail: str = ""
    # Run with static and LLM review skipped, to show the walls hold on their own: never scored.
    unreviewed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "unreviewed": self.unreviewed,
            "scoring": not self.unreviewed and bool(self.manifest.get("validation", {}).get("score_eligible")),
            "reason_code": self.reason_code,
            "detail": self.detail,
            "evidence": evidence_to_json(self.evidence),
            "manifest": self.manifest,
            "validation": self.validation.to_json() if self.validation else {"ok": False, "findings": []},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvaluationOutcome:
        validation = data.get("validation")
        return cls(
            decision=data["decision"],
            reason_code=str(data.get("reason_code", "")),
            detail=str(data.get("detail", "")),
            evidence=tuple(Evidence.from_json(e) for e in data.get("evidence", ())),
            manifest=dict(data.get("manifest") or {}),
            validation=ValidationReport.from_json(validation) if validation else None,
            unreviewed=bool(data.get("unreviewed", False)),
        )


def platform_manifest_path(settings: Settings) -> Path | None:
    """Platform's MANIFEST.json where the configured data are Platform's locked splits, else None."""
    if settings.dataset_manifest is not None:
        return settings.dataset_manifest
    if settings.dataset_dir is not None and is_platform_layout(settings.dataset_dir):
        return settings.dataset_dir / MANIFEST_NAME
    return None


def locked_dataset(settings: Settings) -> LockedDataset:
    """The configured dataset; the embedded default builds the synthetic fixture on first use.

    Platform's locked splits come in two shapes: the prep root (`PRISM_DATASET_DIR` holding its
    MANIFEST.json, train/, val/) or, in Platform's challenge container, one flat volume per split
    (`PRISM_BASE_EVAL_TRAIN_DATA_DIR`, `PRISM_BASE_EVAL_VAL_DATA_DIR`) with the manifest given
    apart (`PRISM_DATASET_MANIFEST`). Either is verified and converted once under the data dir.
    """
    pin = settings.dataset_pin or FINEWEB_EDU_PIN
    cache = settings.data_dir / "datasets"
    if settings.dataset_dir is None and (settings.base_eval_train_data_dir or settings.base_eval_val_data_dir):
        train, val, manifest = (
            settings.base_eval_train_data_dir,
            settings.base_eval_val_data_dir,
            settings.dataset_manifest,
        )
        if train is None or val is None or manifest is None:
            raise DatasetError(
                "Platform's split volumes need PRISM_BASE_EVAL_TRAIN_DATA_DIR, PRISM_BASE_EVAL_VAL_DATA_DIR "
                "and PRISM_DATASET_MANIFEST (Platform's MANIFEST.json) together; one is missing"
            )
        return platform_dataset(val.parent, cache, manifest=manifest, split_dirs={"train": train, "val": val}, pin=pin)
    if settings.dataset_dir is None:
        return ensure_fixture_dataset(settings.resolved_dataset_dir)
    if settings.dataset_manifest is not None or is_platform_layout(settings.dataset_dir):
        # Platform's staged FineWeb-Edu splits: the prep root, or a directory of them with the manifest apart
        return platform_dataset(settings.dataset_dir, cache, manifest=settings.dataset_manifest, pin=pin)
    return load_locked_dataset(settings.dataset_dir)


def _static_review(project: Project) -> tuple[Evidence, ...] | None:
    """Findings of `prism.review.static`, or None where that module is not installed."""
    try:
        static = importlib.import_module("prism.review.static")
    except ModuleNotFoundError:
        return None
    report = static.review_project(project)
    return () if report.accepted else tuple(report.findings)


def evaluate_project(
    project: Project,
    *,
    settings: Settings,
    runtime_config: RuntimeConfig,
    mode: Mode,
    sandbox: Sandbox,
    submission_id: str = "local",
    dataset: LockedDataset | None = None,
    work_dir: Path | None = None,
    unreviewed: bool = False,
    heldout_sandbox: Sandbox | None = None,
    on_progress: Callable[[ProgressPoint], None] | None = None,
) -> EvaluationOutcome:
    """Review, then the three phases and validation. `unreviewed` skips review to test the walls:
    it refuses `official` mode and its outcome is never scoring. `heldout_sandbox` (from
    `get_heldout_sandbox`) runs the held-out phase on this host instead of on `sandbox`.
    `on_progress` gets the recorder's live training points (advisory: only the report counts)."""
    if unreviewed and mode == "official":
        raise UnreviewedOfficialRun("an unreviewed run cannot be official: it exists to test the walls")
    outcome = _evaluate(
        project,
        settings=settings,
        runtime_config=runtime_config,
        mode=mode,
        sandbox=sandbox,
        submission_id=submission_id,
        dataset=dataset,
        work_dir=work_dir,
        reviewed=not unreviewed,
        heldout_sandbox=heldout_sandbox,
        on_progress=on_progress,
    )
    return replace(outcome, unreviewed=unreviewed)


def _evaluate(
    project: Project,
    *,
    settings: Settings,
    runtime_config: RuntimeConfig,
    mode: Mode,
    sandbox: Sandbox,
    submission_id: str,
    dataset: LockedDataset | None,
    work_dir: Path | None,
    reviewed: bool,
    heldout_sandbox: Sandbox | None = None,
    on_progress: Callable[[ProgressPoint], None] | None = None,
) -> EvaluationOutcome:
    findings = _static_review(project) if reviewed else None
    if findings:
        return EvaluationOutcome(decision="rejected", reason_code="static_review", evidence=findings)
    dataset = dataset or locked_dataset(settings)
    with tempfile.TemporaryDirectory(prefix="prism-eval-") as scratch:
        root = work_dir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        job = make_job(
            submission_id=submission_id,
            code_hash=project.code_hash,
            mode=mode,
            runtime_config=runtime_config,
            dataset=dataset,
            work_dir=root,
        )
        try:
            if heldout_sandbox is None and runs_jointly(sandbox):  # one sandbox start for all three
                joint = run_joint(job, project, sandbox, on_progress=on_progress)
                inspect, train, heldout = joint.inspect, joint.trained(), joint.scored()
            else:
                inspect = run_inspect(job, project, sandbox)
                train = run_train(job, project, sandbox, inspect, on_progress=on_progress)
                heldout = run_heldout_placed(
                    job, project, sandbox, train, heldout_sandbox=heldout_sandbox, settings=settings
                )
        except EvaluationRejected as exc:
            return EvaluationOutcome(decision="rejected", reason_code=exc.reason_code, evidence=exc.evidence)
        except MinerCodeFailed as exc:
            return EvaluationOutcome(decision="failed", reason_code=exc.reason_code, detail=exc.detail)
        manifest = build_manifest(job, inspect, train, heldout)
        report = validate_manifest(manifest, job=job, inspect=inspect, train=train, heldout=heldout)
    if not report.ok:
        return EvaluationOutcome(
            decision="rejected",
            reason_code="manifest_validation",
            evidence=report.findings,
            manifest=manifest,
            validation=report,
        )
    found = suspicions(inspect, train, heldout)
    if found:
        # Figures no honest run produces: an operator looks; never scored meanwhile.
        return EvaluationOutcome(
            decision="quarantined",
            reason_code=found[0].rule_id,
            evidence=found,
            manifest=manifest,
            validation=report,
            detail="; ".join(item.explanation for item in found),
        )
    return EvaluationOutcome(decision="accepted", manifest=manifest, validation=report)
