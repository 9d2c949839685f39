from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from prism.logs import JsonFormatter, StderrHandler, TextFormatter


def _record(**extra: str) -> logging.LogRecord:
    record = logging.LogRecord("prism.pipeline.worker", logging.INFO, __file__, 1, "claimed submission", (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_records_carry_the_submission_id() -> None:
    record = _record(submission_id="abc-123", worker="worker-1")
    line = TextFormatter().format(record)
    assert line.endswith("claimed submission submission_id=abc-123 worker=worker-1")
    document = json.loads(JsonFormatter().format(record))
    assert document["submission_id"] == "abc-123" and document["message"] == "claimed submission"


def test_records_without_context_have_no_empty_fields() -> None:
    assert "submission_id" not in json.loads(JsonFormatter().format(_record()))


def test_logs_follow_stderr_when_it_is_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    handler = StderrHandler()
    handler.setFormatter(TextFormatter())
    first.close()  # what a CLI runner does with the stream it captured
    monkeypatch.setattr(sys, "stderr", second)
    handler.emit(_record(submission_id="abc-123"))
    assert "claimed submission submission_id=abc-123" in second.getvalue()
