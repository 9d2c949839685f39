"""`LlmReviewConfig`: everything one review needs, from `Settings` and the runtime-config policy.

Built once per review by the pipeline, never from anything a miner sends. The API key and the
other known secrets are kept out of `repr`, so logging a config cannot leak them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from prism.config import Settings
from prism.errors import ConfigError
from prism.runtime_config import LlmReviewPolicy

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Below this the fixed part of the prompt leaves too little room for code to chunk sensibly.
MIN_REQUEST_CHARS = 8_000
MAX_RULE_CHARS = 2_000
_RULE_ID = re.compile(r"^[a-z][a-z0-9_.-]{0,47}$")


@dataclass(frozen=True, slots=True)
class ReviewRule:
    rule_id: str
    text: str


def parse_rules(lines: tuple[str, ...] | list[str], *, prefix: str) -> tuple[ReviewRule, ...]:
    """One rule per non-blank line (`#` starts a comment line); `rule_id: text` names the rule."""
    rules: list[ReviewRule] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_RULE_CHARS:
            raise ConfigError(f"an LLM review rule exceeds max_rule_chars={MAX_RULE_CHARS}: {line[:60]!r}...")
        head, sep, tail = line.partition(":")
        if sep and _RULE_ID.match(head.strip()) and tail.strip():
            rules.append(ReviewRule(rule_id=head.strip(), text=tail.strip()))
        else:
            rules.append(ReviewRule(rule_id=f"{prefix}_{len(rules) + 1}", text=line))
    return tuple(rules)


def _rules_from_file(path: Path | None) -> tuple[ReviewRule, ...]:
    if path is None:
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"PRISM_LLM_RULES_FILE points to {str(path)!r}, which cannot be read: {exc.strerror}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"PRISM_LLM_RULES_FILE {str(path)!r} is not UTF-8 text") from exc
    return parse_rules(text.splitlines(), prefix="operator_file")


@dataclass(frozen=True, slots=True)
class LlmReviewConfig:
    enabled: bool
    required: bool
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 60.0
    retries: int = 2
    retry_backoff_seconds: float = 1.0
    max_tokens: int = 4096
    temperature: float = 0.0
    max_request_chars: int = 120_000
    tool_choice: Literal["required", "auto"] = "required"
    rules: tuple[ReviewRule, ...] = ()
    evidence_required_for_rejection: bool = True
    max_evidence_lines: int = 40
    # Every secret PRISM holds, the key included: scrubbed from transcripts, errors and logs.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.max_request_chars < MIN_REQUEST_CHARS:
            raise ConfigError(
                f"llm_max_request_chars must be at least {MIN_REQUEST_CHARS}, got {self.max_request_chars}"
            )
        if self.retries < 0 or self.timeout_seconds <= 0:
            raise ConfigError("llm retries must be >= 0 and the timeout > 0")
        if self.api_key and self.api_key not in self.secrets:
            object.__setattr__(self, "secrets", (*self.secrets, self.api_key))

    @property
    def attempts(self) -> int:
        return self.retries + 1

    @classmethod
    def from_settings(cls, settings: Settings, policy: LlmReviewPolicy) -> LlmReviewConfig:
        file_rules = _rules_from_file(settings.llm_rules_file)
        policy_rules = parse_rules(list(policy.rules), prefix="operator")
        return cls(
            enabled=settings.llm_review_enabled,
            required=settings.llm_review_required,
            base_url=settings.llm_base_url or DEFAULT_BASE_URL,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_seconds=settings.llm_timeout_seconds,
            retries=settings.llm_max_retries,
            retry_backoff_seconds=settings.llm_retry_backoff_seconds,
            max_tokens=settings.llm_max_tokens,
            temperature=0.0,
            max_request_chars=settings.llm_max_request_chars,
            tool_choice=settings.llm_tool_choice,
            rules=file_rules + policy_rules,
            evidence_required_for_rejection=policy.evidence_required_for_rejection,
            max_evidence_lines=policy.max_evidence_lines,
            secrets=settings.known_secrets(),
        )
