"""The LLM key reaches the provider and nowhere else: not logs, transcripts, results, errors or reprs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from prism.config import Settings
from prism.intake.project import Project
from prism.review.llm import LlmReviewConfig, review_project
from prism.review.llm.redact import redact
from prism.runtime_config import LlmReviewPolicy
from tests.review.llm_support import EVIL_PY, KEY, exfil_evidence
from tests.stand_ins.openai_server import Reply, StandInOpenAI, mermaid_call, verdict_call


@pytest.fixture
def server() -> Iterator[StandInOpenAI]:
    with StandInOpenAI() as stand_in:
        yield stand_in


@pytest.fixture
def settings(server: StandInOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    key_file = tmp_path / "llm.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    for name in ("PRISM_LLM_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRISM_LLM_API_KEY_FILE", str(key_file))
    monkeypatch.setenv("PRISM_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("PRISM_LLM_REVIEW_ENABLED", "true")
    monkeypatch.setenv("PRISM_LLM_REVIEW_REQUIRED", "true")
    monkeypatch.setenv("PRISM_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("PRISM_LLM_RETRY_BACKOFF_SECONDS", "0")
    return Settings()


def test_the_key_is_sent_to_the_provider_but_never_logged_or_stored(
    server: StandInOpenAI, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = LlmReviewConfig.from_settings(settings, LlmReviewPolicy())
    # The provider echoes the key in its error body, as some do on a 401; then the review succeeds.
    server.script(
        Reply.error(401, f"Incorrect API key provided: {KEY}"),
        Reply.tools(mermaid_call(), verdict_call("reject", evidence=[exfil_evidence()])),
    )
    project = Project(files={"model.py": EVIL_PY})
    result = review_project(project, config=config)

    assert result.outcome == "reject"
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in server.requests)
    stored = json.dumps(result.to_json())
    assert KEY not in stored
    assert "Incorrect API key provided: [REDACTED]" in stored
    assert KEY not in caplog.text
    assert "Incorrect API key provided: [REDACTED]" in caplog.text
    assert KEY not in repr(config) and KEY not in repr(result)
    assert config.api_key == KEY  # held, just never shown


def test_a_held_review_reports_the_failure_without_the_key(
    server: StandInOpenAI, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = LlmReviewConfig.from_settings(settings, LlmReviewPolicy())
    server.script(*[Reply.error(403, f"key {KEY} is not allowed for model")] * 2)
    result = review_project(Project(files={"model.py": EVIL_PY}), config=config)

    assert result.outcome == "hold"
    assert "HTTP 403" in result.reason
    assert KEY not in result.reason and KEY not in json.dumps(result.to_json())
    assert KEY not in caplog.text


def test_without_a_key_a_placeholder_is_sent_never_an_ambient_openai_key(
    server: StandInOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient-should-not-travel")
    config = LlmReviewConfig(enabled=True, required=True, base_url=server.base_url, model="m", retries=0)
    server.script(Reply.tools(mermaid_call(), verdict_call("approve")))
    assert review_project(Project(files={"model.py": "x = 1\n"}), config=config).outcome == "approve"

    [request] = server.requests
    assert "sk-ambient-should-not-travel" not in request.text()


def test_redaction_scrubs_known_secrets_and_unknown_bearer_tokens() -> None:
    text = f"key={KEY}; proxy echoed Authorization: Bearer abcdef0123456789xyz"
    assert redact(text, (KEY, "abc")) == "key=[REDACTED]; proxy echoed Authorization: Bearer [REDACTED]"
