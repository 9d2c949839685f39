"""The one settings object, read from the environment (`PRISM_*`) with secrets from files.

Precedence for configuration is: an active SQL runtime-config row (see `runtime_config.py`),
then the environment, then the defaults below. Secrets follow their own order, files first:

    PRISM_SHARED_TOKEN_FILE > CHALLENGE_SHARED_TOKEN_FILE > PRISM_SHARED_TOKEN > CHALLENGE_SHARED_TOKEN

An inline token works but logs a warning: production should mount a secret file.

Platform's names are read as aliases; PRISM's own name wins where both are set:

    PRISM_CHALLENGE_SLUG > BASE_CHALLENGE_SLUG > CHALLENGE_SLUG
    PRISM_CHALLENGE_VERSION > CHALLENGE_VERSION            (must equal the registry's version)
    PRISM_DATABASE_URL > CHALLENGE_DATABASE_URL            (async drivers normalised to sync ones)
    PRISM_SANDBOX_BACKEND > CHALLENGE_DOCKER_BACKEND       ("cli" is PRISM's "docker")
    PRISM_BROKER_URL > CHALLENGE_DOCKER_BROKER_URL
    PRISM_BROKER_TOKEN_FILE > CHALLENGE_DOCKER_BROKER_TOKEN_FILE > PRISM_BROKER_TOKEN > CHALLENGE_DOCKER_BROKER_TOKEN

`platform_container()` is true when Platform started this process (it always sets
BASE_CHALLENGE_SLUG or CHALLENGE_SLUG); `prism serve` then binds 0.0.0.0:8080, where Platform's
registry entry (`internal_base_url: http://challenge-prism:8080`) reaches it.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from prism.errors import ConfigError

log = logging.getLogger(__name__)

SandboxBackendName = Literal["bubblewrap", "docker", "broker"]
# Where the held-out phase runs: `auto` (a local bubblewrap sandbox on this host when the broker is
# the backend and Platform's val split is mounted here, else where training ran), `same`, or a
# local backend by name.
HeldoutSandboxName = Literal["auto", "same", "bubblewrap", "docker"]
PLATFORM_MARKERS = ("BASE_CHALLENGE_SLUG", "CHALLENGE_SLUG")
PLATFORM_HOST, PLATFORM_PORT = "0.0.0.0", 8080  # noqa: S104 - Platform reaches the container over its overlay
LOCAL_HOST, LOCAL_PORT = "127.0.0.1", 8000


def platform_container() -> bool:
    """Whether Platform started this process (its orchestrator and install script set these)."""
    return any(os.environ.get(name, "").strip() for name in PLATFORM_MARKERS)


def normalize_database_url(url: str) -> str:
    """A URL PRISM's synchronous engine can open: Platform hands out async-driver URLs
    (`sqlite+aiosqlite:////data/x.sqlite3`, `postgresql+asyncpg://...`); the data are the same."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"database URL {url!r} has no scheme")
    dialect = scheme.split("+", 1)[0].lower()
    if dialect == "sqlite":
        return f"sqlite://{rest}"
    if dialect in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


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
    model_config = SettingsConfigDict(env_prefix="PRISM_", extra="ignore", populate_by_name=True)

    data_dir: Path = Path("./prism-data")
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("PRISM_DATABASE_URL", "CHALLENGE_DATABASE_URL")
    )
    challenge_slug: str = Field(
        "prism", validation_alias=AliasChoices("PRISM_CHALLENGE_SLUG", "BASE_CHALLENGE_SLUG", "CHALLENGE_SLUG")
    )
    # What /version reports; Platform's readiness check wants exactly its registry entry's version.
    challenge_version: str = Field(
        "1", min_length=1, validation_alias=AliasChoices("PRISM_CHALLENGE_VERSION", "CHALLENGE_VERSION")
    )
    # `prism serve`/`prism up` bind here when no option says otherwise (None: see platform_container).
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
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
    sandbox_backend: SandboxBackendName = Field(
        "bubblewrap", validation_alias=AliasChoices("PRISM_SANDBOX_BACKEND", "CHALLENGE_DOCKER_BACKEND")
    )
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    sandbox_bwrap_binary: str = "bwrap"
    # cgroup v2 only: a delegated cgroup (no processes of its own) under which job cgroups go.
    sandbox_cgroup_parent: Path | None = None
    # The held-out phase's backend (`HeldoutSandboxName`; docs/sandbox.md, held-out on the scorer).
    heldout_sandbox: HeldoutSandboxName = "auto"
    broker_task_id: str = "prism-evaluation"
    broker_request_slack_seconds: float = Field(60.0, ge=0)
    docker_image: str = "prism-runtime:latest"
    docker_binary: str = "docker"
    broker_url: str | None = Field(
        None, validation_alias=AliasChoices("PRISM_BROKER_URL", "CHALLENGE_DOCKER_BROKER_URL")
    )
    # The GPU type of the broker's GPU workers, as the operator knows it: the broker cannot select one.
    broker_gpu_type: str | None = None
    dataset_dir: Path | None = None
    # The revision a Platform-staged dataset must be pinned to (None: the FineWeb-Edu pin PRISM knows).
    dataset_pin: str | None = None
    # Platform's locked splits as its install script mounts them on the challenge service: each
    # split a flat volume of its own, without the MANIFEST.json, which the operator provides apart.
    dataset_manifest: Path | None = None
    base_eval_train_data_dir: Path | None = None  # Platform's train volume here (/secret/train)
    base_eval_val_data_dir: Path | None = None  # Platform's secret val volume here (/secret/val)
    # Where Platform's broker mounts the train split (read-only) in every evaluation container;
    # the train phase reads it there instead of a staged copy. Empty: stage the split as elsewhere.
    base_eval_data_dir: str = "/data/fineweb-edu/train"

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

    @field_validator("sandbox_backend", mode="before")
    @classmethod
    def _platform_backend_name(cls, value: object) -> object:
        # Platform's CHALLENGE_DOCKER_BACKEND says "cli" for the Docker CLI.
        return "docker" if isinstance(value, str) and value.strip().lower() == "cli" else value

    @field_validator("base_eval_data_dir")
    @classmethod
    def _container_path(cls, value: str) -> str:
        value = value.strip()
        if value and (not value.startswith("/") or value != os.path.normpath(value) or value == "/"):
            raise ValueError(f"PRISM_BASE_EVAL_DATA_DIR must be an absolute, normalised path or empty, not {value!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _sync_driver(cls, value: str | None) -> str | None:
        return normalize_database_url(value) if value else value

    # The database boundary: how long work waits for a busy lock or an unreachable database
    # before giving up (a worker then backs off; nothing counts against a submission).
    db_retry_budget_seconds: float = Field(120.0, ge=0)
    db_connect_timeout_seconds: float = Field(5.0, gt=0)
    db_statement_timeout_seconds: float = Field(30.0, gt=0)
    # get_weights is served from memory; a background thread refreshes it this often.
    weights_refresh_seconds: float = Field(1.0, gt=0)
    # HTTP edge: a request that has not answered by then gets 503 (e.g. a hung database); a body
    # that stalls this long gets 408; connections beyond the limit get 503 from uvicorn.
    request_timeout_seconds: float = Field(25.0, gt=0)
    body_read_timeout_seconds: float = Field(30.0, gt=0)
    http_limit_concurrency: int = Field(1024, ge=1)
    http_keep_alive_seconds: int = Field(5, ge=1)
    # `prism serve` processes sharing the port (each with its own weights refresher).
    http_workers: int = Field(1, ge=1, le=64)
    # Clean-up: work dirs of failed/rejected submissions (and stray sandbox temp dirs and empty
    # job cgroups) are kept this long for an operator to inspect, then removed.
    work_retention_hours: float = Field(24.0, ge=0)
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

    def bind_address(self, host: str | None = None, port: int | None = None) -> tuple[str, int]:
        """Command-line option, else PRISM_HOST/PRISM_PORT, else Platform's 0.0.0.0:8080 inside its
        challenge container, else the loopback 127.0.0.1:8000."""
        on_platform = platform_container()
        return (
            host or self.host or (PLATFORM_HOST if on_platform else LOCAL_HOST),
            port or self.port or (PLATFORM_PORT if on_platform else LOCAL_PORT),
        )

    def official_token_problem(self) -> str | None:
        """Why official operation must not start with these tokens, or None.

        The console and review queue must not open to whoever holds the token Platform uses for
        every internal call: in production the operator token is its own secret.
        """
        operator = read_secret(
            files=("PRISM_OPERATOR_TOKEN_FILE",), inline=("PRISM_OPERATOR_TOKEN",), what="the operator token"
        )
        if operator is None:
            return "no operator token: set PRISM_OPERATOR_TOKEN_FILE (it must differ from the shared Platform token)"
        if self.shared_token is not None and operator == self.shared_token:
            return "the operator token equals the shared Platform token; give operators their own secret"
        return None

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
        return read_secret(
            files=("PRISM_BROKER_TOKEN_FILE", "CHALLENGE_DOCKER_BROKER_TOKEN_FILE"),
            inline=("PRISM_BROKER_TOKEN", "CHALLENGE_DOCKER_BROKER_TOKEN"),
            what="the broker token",
        )

    def known_secrets(self) -> tuple[str, ...]:
        """Every secret PRISM holds; sandbox output and transcripts are redacted of these."""
        secrets = (self.shared_token, self.operator_token, self.llm_api_key, self.broker_token)
        return tuple(sorted({s for s in secrets if s}))


def get_settings() -> Settings:
    """The settings from the environment; an invalid value is a `ConfigError` naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{_variable(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from exc


def _variable(loc: tuple[int | str, ...]) -> str:
    name = "_".join(str(p) for p in loc)
    # An aliased field reports the variable it was read from (already upper case).
    return name if name.isupper() else f"PRISM_{name.upper()}"
