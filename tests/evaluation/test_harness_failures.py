"""Every way out of the recorder writes one result line, and it blames the right party."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from prism.evaluation import harness, phases, wire
from prism.evaluation.phase import RESULT_PREFIX, verify_report_line

from .conftest import EXAMPLE, SMALL_SPEC

pytestmark = pytest.mark.slow


def _main(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    job = tmp_path / "job"
    job.mkdir()
    (tmp_path / "artifacts").mkdir()
    (job / "job.json").write_text(json.dumps(replace(SMALL_SPEC, phase="inspect").to_json()))
    monkeypatch.setattr(harness, "make_undumpable", lambda: None)  # leave the test runner dumpable
    key = bytes(range(32))
    monkeypatch.setattr(harness, "read_key", lambda: key)  # the host's per-phase key, as stdin would carry it
    argv = ["--job", str(job / "job.json"), "--submission", str(EXAMPLE), "--artifacts", str(tmp_path / "artifacts")]
    assert harness.main(argv) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith(RESULT_PREFIX)]
    assert len(lines) == 1
    body = verify_report_line(key, "inspect", lines[0])
    assert body is not None, "the line's MAC does not verify"
    report: dict[str, Any] = json.loads(body)
    return report


def test_a_tensor_over_the_wire_limit_is_the_models_failure_not_a_crash_of_ours(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The state tensors the model sends are over the (lowered) limit: the recorder refuses the
    # frame while the model's process is still alive, blocked writing. `proc.wait(timeout=10)`
    # used to raise TimeoutExpired out of run_phase: no line, and a retry as our own fault.
    monkeypatch.setattr(wire, "MAX_TENSOR_BYTES", 1024)
    report = _main(tmp_path, capfd, monkeypatch)
    assert (report["status"], report["reason_code"]) == ("failed", "protocol"), report
    assert "exceeds" in report["detail"]


def test_an_unexpected_error_in_the_recorder_is_reported_as_ours(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> dict[str, Any]:
        raise KeyError("a bug in the recorder")

    monkeypatch.setattr(phases, "inspect", broken)
    report = _main(tmp_path, capfd, monkeypatch)
    assert (report["status"], report["reason_code"]) == ("failed", "infrastructure"), report
    assert "KeyError" in report["detail"]
