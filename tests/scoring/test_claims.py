"""A claim that contradicts the measurement quarantines the submission, with the figures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prism.config import Settings
from prism.intake.limits import IntakeLimits
from prism.intake.project import Project
from prism.intake.project_yaml import parse_project_config
from prism.pipeline.context import StepContext, SubmissionInfo
from prism.pipeline.review_steps import claims_review_step
from prism.runtime_config import RuntimeConfig
from prism.scoring.claims import measured_figures, review_claims

MANIFEST: dict[str, Any] = {
    "model": {"parameter_count": 445_952},
    "compute": {"tokens": 4096, "flops": 1.0e9},
    "metrics": {"bits_per_byte": 4.1, "heldout_bits_per_byte": 4.2},
}


def _context(prism_yaml: str) -> StepContext:
    files = {"model.py": "def build_model(ctx):\n    return None\n", "prism.yaml": prism_yaml}
    project = Project(files, parse_project_config(prism_yaml, limits=IntakeLimits()))
    return StepContext(
        settings=Settings(),  # LLM review off: the claims decision stands on the figures alone
        runtime_config=RuntimeConfig(),
        runtime_config_version=None,
        sessions=None,  # type: ignore[arg-type]
        submission=SubmissionInfo("s", "hk", None, "p.zip", datetime.now(UTC), 0),
        project=project,
        work_dir=Path("/nonexistent"),
        sandbox_factory=lambda: None,  # type: ignore[arg-type,return-value]
        records={"validation": {"manifest": MANIFEST}},
    )


def test_measured_figures_ignore_what_is_not_a_number() -> None:
    figures = measured_figures({"model": {"parameter_count": True}, "metrics": {"bits_per_byte": "1"}})
    assert figures["parameter_count"] is None and figures["bits_per_byte"] is None


def test_contradiction_quarantines_with_the_figures() -> None:
    outcome = claims_review_step(_context("claims:\n  parameter_count: 10000000\n  note: fast\n"))
    assert outcome.outcome == "quarantined"
    assert outcome.reason_code == "claims.contradiction"
    assert outcome.detail is not None and "10000000" in outcome.detail and "445952" in outcome.detail
    [item] = [e for e in outcome.evidence if e.rule_id == "claims.contradiction"]
    assert (item.path, item.line) == ("prism.yaml", 2)
    assert outcome.record["measured"]["parameter_count"] == 445_952
    assert outcome.record["contradictions"][0]["rule_id"] == "claims.contradiction"


def test_claims_that_hold_pass() -> None:
    outcome = claims_review_step(_context("claims:\n  parameter_count: 446000\n  bits_per_byte: 4.1\n"))
    assert outcome.outcome == "passed"
    assert not review_claims("", {"parameter_count": 446_000}, MANIFEST).contradicted


def test_no_claims_pass_without_review() -> None:
    outcome = claims_review_step(_context("name: tiny\n"))
    assert outcome.outcome == "passed" and outcome.detail == "no claims to review"
