"""Reason codes are joined in one place and never doubled, on every path that makes one."""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import prism
from prism.config import Settings
from prism.intake.project import Project
from prism.pipeline.context import StepContext, SubmissionInfo
from prism.pipeline.review_steps import _llm_outcome, static_review_step
from prism.reasons import is_well_formed, qualify
from prism.review.llm import LlmReviewResult
from prism.review.static import StaticPolicy
from prism.runtime_config import RuntimeConfig

SRC = Path(prism.__file__).parent
CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "redteam" / "cases" / "policy.yaml").read_text(encoding="utf-8")
)
STUB = "\n\ndef build_model(ctx):\n    return None\n"
# Namespaces whose rule ids name themselves (the reviewers put the namespace in the id).
NAMESPACES = ("static", "duplicate", "archive", "claims", "llm_review", "claims_review")
RULE_ID = re.compile(rf"^(?:{'|'.join(NAMESPACES)})\.[a-z0-9_.]+$")


def test_qualify_joins_only_what_is_missing() -> None:
    assert qualify("static", "policy_violation") == "static.policy_violation"
    assert qualify("static", "static.import.forbidden") == "static.import.forbidden"
    assert qualify("static", "contract.missing_build_model") == "contract.missing_build_model"
    assert qualify("llm_review", "rejected") == "llm_review.rejected"
    assert qualify("static", "") == "static"


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("static.import.forbidden", True),
        ("static.static.import.forbidden", False),
        ("llm_review.llm_review.rejected", False),
        ("static..x", False),
        ("Static.x", False),
        ("completed", True),
    ],
)
def test_well_formed(code: str, ok: bool) -> None:
    assert is_well_formed(code) is ok


def _rule_ids_in_source() -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and RULE_ID.match(node.value):
                found.add(node.value)
    return found


def test_every_rule_id_in_the_source_survives_its_stage_prefix() -> None:
    ids = _rule_ids_in_source()
    assert len(ids) > 30  # the scan sees the static, duplicate and archive rules
    for rule in ids:
        assert is_well_formed(rule), rule
        assert qualify("static", rule) == rule and qualify(rule.split(".", 1)[0], rule) == rule


def _context(files: dict[str, str]) -> StepContext:
    info = SubmissionInfo("s", "hk", None, "p.zip", datetime.now(UTC), 0)
    return StepContext(
        settings=Settings(),
        runtime_config=RuntimeConfig(),
        runtime_config_version=None,
        sessions=None,  # type: ignore[arg-type]  # the static step touches no database
        submission=info,
        project=Project(files=files),
        work_dir=Path("/nonexistent"),
        sandbox_factory=lambda: None,  # type: ignore[arg-type,return-value]
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_static_step_codes_of_the_whole_red_team_corpus(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    files = dict(case["files"])
    if not case.get("raw"):
        files["model.py"] = files["model.py"] + STUB
    if case.get("policy"):  # the limits this case is about, as the step would read them from settings
        policy = replace(StaticPolicy(), **case["policy"])
        monkeypatch.setattr(StaticPolicy, "from_settings", classmethod(lambda cls, settings: policy))
    outcome = static_review_step(_context(files))
    assert outcome.outcome == "rejected"
    assert outcome.reason_code is not None and is_well_formed(outcome.reason_code), outcome.reason_code
    rules = {item.rule_id for item in outcome.evidence}
    if len(rules) == 1:
        assert outcome.reason_code == rules.pop()


def test_forbidden_import_code_is_the_rule_id() -> None:
    outcome = static_review_step(_context({"model.py": "import socket\n" + STUB}))
    assert outcome.reason_code == "static.import.forbidden"


@pytest.mark.parametrize("stage", ["llm_review", "claims_review"])
@pytest.mark.parametrize("result", ["reject", "quarantine", "hold", "approve", "advisory_pass", "disabled"])
def test_llm_stage_codes(stage: str, result: str) -> None:
    outcome = _llm_outcome(LlmReviewResult(outcome=result, reason="r"), stage=stage)  # type: ignore[arg-type]
    assert outcome.reason_code is not None and is_well_formed(outcome.reason_code)
    assert outcome.reason_code.startswith(stage + ".") and outcome.reason_code.count(stage) == 1
