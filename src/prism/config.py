"""The one settings object, read from the environment (`PRISM_*`) with secrets from files.

Precedence for configuration is: an active SQL runtime-config row (see `runtime_config.py`),
then the environment, then the defaults below. Secrets follow their own order, files first:

    PRISM_SHARED_TOKEN_FILE > CHALLENGE_SHARED_TOKEN_FILE > PRISM_SHARED_TOKEN > CHALLENGE_SHARED_TOKEN

An inline token works but logs a warning: production should mount a secret file.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from prism.errors import ConfigError

log = logging.getLogger(__name__)

SandboxBackendName = Literal["bubblewrap", "docker", "broker"]


def read_secret(*, files: tuple[str, ...], inline: tuple[str, ...], what: str) -> str | None:
    """First secret file that is set, else first inline variable that is set, else None.

    A variable that names a file which cannot be read is a configuration error, never a silent
    fallback to the next source.
    """
    for name in files:
        path = os.environ.get(name)
        if path:
            try:
                value = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{name} points to {path!r}, which cannot be read: {exc.strerror}") from exc
            if not value:
                raise ConfigError(f"{name} points to {path!r}, which is empty")
            return value
    for name in inline:
        value = os.environ.get(name, "").strip()
        if value:
            log.warning("%s is read from the inline variable %s; use a secret file in production", what, name)
            return value
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRISM_", extra="ignore")

    data_dir: Path = Path("./prism-data")
    database_url: str | None = None
    challenge_slug: str = "prism"
    public_submissions_enabled: bool = False
    signature_ttl_seconds: int = Field(300, ge=1)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Scores, the leaderboard and weights are grouped into epochs of this length (a subnet tempo).
    epoch_seconds: int = Field(4320, ge=60)

    # Upload and archive limits. Each error names the limit it hit.
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_files: int = Field(200, ge=1)
    max_file_bytes: int = Field(1024 * 1024, ge=1)
    max_total_bytes: int = Field(8 * 1024 * 1024, ge=1)
    max_path_depth: int = Field(8, ge=1)
    max_path_length: int = Field(200, ge=1)
    max_compression_ratio: float = Field(100.0, gt=1)
    max_literal_elements: int = Field(256, ge=1)
    max_literal_string_bytes: int = Field(4096, ge=1)
    max_config_bytes: int = Field(64 * 1024, ge=256)
    max_file_literal_numbers: int = Field(4096, ge=1)
    max_literal_blob_chars: int = Field(512, ge=16)

    # Execution.
    sandbox_backend: SandboxBackendName = "bubblewrap"
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    sandbox_bwrap_binary: str = "bwrap"
    # cgroup v2 only: a delegated cgroup (no processes of its own) under which job cgroups go.
    sandbox_cgroup_parent: Path | None = None
    broker_task_id: str = "prism-evaluation"
    broker_request_slack_seconds: float = Field(60.0, ge=0)
    docker_image: str = "prism-runtime:latest"
    docker_binary: str = "docker"
    broker_url: str | None = None
    dataset_dir: Path | None = None

    # Worker.
    worker_lease_seconds: int = Field(60, ge=5)
    worker_heartbeat_seconds: float = Field(10.0, gt=0)
    worker_poll_seconds: float = Field(1.0, gt=0)
    worker_max_infra_retries: int = Field(5, ge=0)
    worker_retry_base_seconds: float = Field(10.0, ge=0)

    # LLM policy review (any OpenAI-compatible endpoint).
    llm_review_enabled: bool = False
    llm_review_required: bool = False
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(2, ge=0)
    llm_max_tokens: int = Field(4096, ge=256)
    llm_max_request_chars: int = Field(120_000, ge=8_000)
    llm_rules_file: Path | None = None
    # Pause between attempts of one review (provider errors, protocol errors); long outages are
    # the pipeline's business (held + back-off), so this stays short.
    llm_retry_backoff_seconds: float = Field(1.0, ge=0)
    # "required" forces a tool call; "auto" for servers that reject tool_choice="required".
    llm_tool_choice: Literal["required", "auto"] = "required"

    # Validators (runtime config `validators` says whether they train; docs/architecture.md).
    # The base URL validators reach PRISM at, e.g. Platform's https://<platform>/challenges/prism.
    validators_public_url: str | None = None
    # How long one worker pass waits for validator results before the submission is held and retried.
    validators_wait_seconds: float = Field(30.0, ge=0)
    # A validator's result carries the trained weights (base64 in a signed JSON body).
    validators_max_result_bytes: int = Field(256 * 1024 * 1024, ge=1024)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'prism.db').resolve()}"

    @property
    def resolved_dataset_dir(self) -> Path:
        return self.dataset_dir or self.data_dir / "dataset"

    @cached_property
    def shared_token(self) -> str | None:
        return read_secret(
            files=("PRISM_SHARED_TOKEN_FILE", "CHALLENGE_SHARED_TOKEN_FILE"),
            inline=("PRISM_SHARED_TOKEN", "CHALLENGE_SHARED_TOKEN"),
            what="the shared Platform token",
        )

    @cached_property
    def operator_token(self) -> str | None:
        """The console and review-queue token; the shared token when no operator token is set."""
        token = read_secret(
            files=("PRISM_OPERATOR_TOKEN_FILE",), inline=("PRISM_OPERATOR_TOKEN",), what="the operator token"
        )
        return token or self.shared_token

    @cached_property
    def llm_api_key(self) -> str | None:
        return read_secret(files=("PRISM_LLM_API_KEY_FILE",), inline=("PRISM_LLM_API_KEY",), what="the LLM key")

    @cached_property
    def broker_token(self) -> str | None:
        return read_secret(files=("PRISM_BROKER_TOKEN_FILE",), inline=("PRISM_BROKER_TOKEN",), what="the broker token")

    def known_secrets(self) -> tuple[str, ...]:
        """Every secret PRISM holds; sandbox output and transcripts are redacted of these."""
        secrets = (self.shared_token, self.operator_token, self.llm_api_key, self.broker_token)
        return tuple(sorted({s for s in secrets if s}))


def get_settings() -> Settings:
    """The settings from the environment; an invalid value is a `ConfigError` naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PRISM_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
