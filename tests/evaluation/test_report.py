"""The host accepts exactly one MAC-valid result line from a sandbox that exited 0; nothing else."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from prism.evaluation.errors import HarnessProtocolError, MinerCodeFailed
from prism.evaluation.phase import RESULT_PREFIX, report_line
from prism.evaluation.runner import accepted_report
from prism.sandbox.spec import RunResult

KEY = secrets.token_bytes(32)
OK = {"phase": "train", "status": "ok", "reason_code": "", "detail": "", "evidence": [], "figures": {"tokens": 8}}


def _line(report: dict[str, Any], key: bytes = KEY, phase: str = "train") -> str:
    return report_line(key, phase, json.dumps(report, sort_keys=True))


def _result(stdout: str, *, exit_code: int | None = 0, timed_out: bool = False, oom: bool = False) -> RunResult:
    return RunResult(
        exit_code=exit_code, timed_out=timed_out, oom_killed=oom, stdout=stdout, stderr="", duration_seconds=1.0
    )


def test_one_valid_line_from_a_clean_exit_is_accepted() -> None:
    assert accepted_report(_result("noise\n" + _line(OK) + "\n"), "train", KEY) == {"tokens": 8}


@pytest.mark.parametrize(
    ("stdout", "kwargs", "reason"),
    [
        ("", {}, "no_report"),
        (_line(OK) + "\n" + _line(OK), {}, "report_tampered"),
        (_line(OK, key=secrets.token_bytes(32)), {}, "report_forged"),
        (_line(OK, phase="inspect"), {}, "report_forged"),
        (RESULT_PREFIX + json.dumps(OK) + " " + "0" * 64, {}, "report_forged"),
        (_line(OK), {"exit_code": -9}, "recorder_killed"),
        (_line(OK), {"exit_code": None, "timed_out": True}, "timeout"),
        ("", {"exit_code": 137, "oom": True}, "out_of_memory"),
        ("", {"exit_code": -19}, "no_report"),
    ],
    ids=["no line", "two lines", "other key", "other phase", "bad mac", "killed", "timeout", "oom", "stopped"],
)
def test_anything_else_is_the_miners_failure(stdout: str, kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(MinerCodeFailed) as caught:
        accepted_report(_result(stdout, **kwargs), "train", KEY)
    assert caught.value.reason_code == reason


def test_an_authenticated_infrastructure_report_is_retried_as_ours() -> None:
    report = {**OK, "status": "failed", "reason_code": "infrastructure", "detail": "host_starved: ..."}
    with pytest.raises(HarnessProtocolError, match="host_starved"):
        accepted_report(_result(_line(report)), "train", KEY)
