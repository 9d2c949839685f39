"""`LlmReviewConfig.from_settings`: settings, the runtime policy and the operator's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism.config import Settings
from prism.errors import ConfigError
from prism.review.llm.config import DEFAULT_BASE_URL, LlmReviewConfig, ReviewRule, parse_rules
from prism.runtime_config import LlmReviewPolicy, parse_runtime_config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PRISM_LLM_API_KEY", "PRISM_LLM_API_KEY_FILE", "PRISM_LLM_BASE_URL", "PRISM_LLM_RULES_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_settings_and_policy_become_one_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text("# operator rules\nno_eval: never call eval or exec\n\nNo downloads of weights at import.\n")
    monkeypatch.setenv("PRISM_LLM_RULES_FILE", str(rules))
    monkeypatch.setenv("PRISM_LLM_API_KEY", "sk-inline-0123456789")
    monkeypatch.setenv("PRISM_LLM_REVIEW_ENABLED", "1")
    monkeypatch.setenv("PRISM_LLM_TIMEOUT_SECONDS", "12.5")
    policy = parse_runtime_config(
        {"llm_review_policy": {"evidence_required_for_rejection": False, "rules": ["Flag any use of pickle."]}}
    ).llm_review_policy

    config = LlmReviewConfig.from_settings(Settings(), policy)

    assert config.enabled and not config.required
    assert config.base_url == DEFAULT_BASE_URL
    assert config.timeout_seconds == 12.5 and config.temperature == 0.0
    assert config.evidence_required_for_rejection is False
    assert config.rules == (
        ReviewRule("no_eval", "never call eval or exec"),
        ReviewRule("operator_file_2", "No downloads of weights at import."),
        ReviewRule("operator_1", "Flag any use of pickle."),
    )
    assert config.api_key == "sk-inline-0123456789"
    assert "sk-inline-0123456789" in config.secrets
    assert "sk-inline" not in repr(config)


def test_an_unreadable_rules_file_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_LLM_RULES_FILE", str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="PRISM_LLM_RULES_FILE"):
        LlmReviewConfig.from_settings(Settings(), LlmReviewPolicy())


def test_too_small_a_request_budget_is_refused() -> None:
    with pytest.raises(ConfigError, match="llm_max_request_chars"):
        LlmReviewConfig(enabled=True, required=True, base_url="http://x/v1", model="m", max_request_chars=4_000)


def test_an_overlong_rule_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_rule_chars"):
        parse_rules(["x" * 5_000], prefix="operator")
