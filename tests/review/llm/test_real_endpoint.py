"""Opt-in: the review against a real OpenAI-compatible endpoint.

Runs only when PRISM_LLM_BASE_URL and a key (PRISM_LLM_API_KEY_FILE or PRISM_LLM_API_KEY) are
set; PRISM_LLM_MODEL picks the model. It checks that a real model follows the tool protocol
(diagram, then verdict) and that an obvious exfiltration is not approved. It asserts nothing a
capable model could fairly disagree with: a benign model may come back approve or quarantine.
"""

from __future__ import annotations

import os

import pytest

from prism.config import Settings
from prism.intake.project import Project
from prism.review.llm import LlmReviewConfig, review_project
from prism.runtime_config import LlmReviewPolicy
from tests.review.llm_support import EVIL_PY, MODEL_PY

_HAS_KEY = bool(os.environ.get("PRISM_LLM_API_KEY_FILE") or os.environ.get("PRISM_LLM_API_KEY"))
pytestmark = pytest.mark.skipif(
    not (os.environ.get("PRISM_LLM_BASE_URL") and _HAS_KEY),
    reason="opt-in: set PRISM_LLM_BASE_URL and PRISM_LLM_API_KEY_FILE (or PRISM_LLM_API_KEY) to run it",
)


def _config() -> LlmReviewConfig:
    settings = Settings(llm_review_enabled=True, llm_review_required=True)
    return LlmReviewConfig.from_settings(settings, LlmReviewPolicy())


@pytest.mark.slow
def test_a_real_model_follows_the_protocol_on_a_benign_project() -> None:
    result = review_project(Project(files={"model.py": MODEL_PY}), config=_config())

    assert result.outcome in ("approve", "quarantine"), result.reason
    assert result.mermaid is not None


@pytest.mark.slow
def test_a_real_model_does_not_approve_obvious_exfiltration() -> None:
    result = review_project(Project(files={"model.py": EVIL_PY}), config=_config())

    assert result.outcome in ("reject", "quarantine"), result.reason
    key = _config().api_key
    assert key is None or key not in str(result.to_json())
