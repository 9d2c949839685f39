"""The red-team corpus: every hostile case is stopped by the rule it names; every benign model passes.

Hostile cases are data (`cases/policy.yaml`, `archive_cases.py`); benign models are real project
folders under `benign/`, reviewed through the same doors a submission takes (a directory and a
ZIP of it).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from redteam_archive_cases import ARCHIVE_CASES, ArchiveCase

from prism.intake.archive import read_project
from prism.intake.directory import read_directory
from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.intake.project import Project
from prism.review.static import StaticPolicy, review_project

HERE = Path(__file__).parent
POLICY_CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "cases" / "policy.yaml").read_text(encoding="utf-8"))
BENIGN = sorted(p for p in (HERE / "benign").iterdir() if p.is_dir())
STUB = "\n\ndef build_model(ctx):\n    return None\n"


def test_corpus_is_large_enough() -> None:
    assert len(POLICY_CASES) + len(ARCHIVE_CASES) >= 60
    assert len(BENIGN) >= 10
    assert len({c["id"] for c in POLICY_CASES}) == len(POLICY_CASES)


@pytest.mark.parametrize("case", POLICY_CASES, ids=[c["id"] for c in POLICY_CASES])
def test_policy_case_is_rejected_by_its_rule(case: dict[str, Any]) -> None:
    files = dict(case["files"])
    if not case.get("raw"):
        files["model.py"] = files["model.py"] + STUB
    policy = replace(StaticPolicy(), **case.get("policy", {}))
    report = review_project(Project(files=files), policy=policy)
    rules = {f.rule_id for f in report.findings}
    assert not report.accepted
    assert case["expect"] in rules, f"{case['id']}: expected {case['expect']}, got {sorted(rules)}"
    if "line" in case:
        lines = {f.line for f in report.findings if f.rule_id == case["expect"]}
        assert case["line"] in lines, f"{case['id']}: {case['expect']} expected at line {case['line']}, got {lines}"
    for finding in report.findings:
        assert finding.path in files and finding.explanation and len(finding.snippet_sha256) in (0, 64)


@pytest.mark.parametrize("case", ARCHIVE_CASES, ids=[c.id for c in ARCHIVE_CASES])
def test_archive_case_is_rejected_by_its_rule(case: ArchiveCase) -> None:
    limits = replace(IntakeLimits(), **case.limits)
    with pytest.raises(IntakeRejected) as caught:
        read_project(case.build(), case.filename, limits=limits)
    assert caught.value.reason_code == case.expect, str(caught.value)
    assert caught.value.evidence and caught.value.evidence[0].rule_id == case.expect


@pytest.mark.parametrize("folder", BENIGN, ids=[p.name for p in BENIGN])
def test_benign_model_is_accepted_from_directory_and_zip(folder: Path) -> None:
    project = read_directory(folder, limits=IntakeLimits())
    report = review_project(project)
    assert report.accepted, [(f.rule_id, f.path, f.line, f.explanation) for f in report.findings]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in project.files.items():
            zf.writestr(path, text)
    zipped = read_project(buffer.getvalue(), "submission.zip", limits=IntakeLimits())
    assert zipped.files == project.files
    assert zipped.config == project.config
    assert review_project(zipped).accepted
