"""PRISM's HTTP surface as Platform meets it: its environment, readiness, get_weights, the bridge
upload and its public proxy. Each request is shaped as Platform's code sends it (read, not copied):
`docker_orchestrator._build_environment` / `_validate_health` / `_validate_version`,
`challenge_client.get_weights`, `app_proxy.bridge_upload` / `_forward_headers` /
`prism_upstream_proxy_path`.
"""

from __future__ import annotations

import gzip
import hashlib
import posixpath
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from prism.api.app import create_app
from prism.api.proxy_guard import LOGIN_FAILURES
from prism.cli.server import official_start_problem
from prism.config import Settings, get_settings
from prism.store.db import make_engine
from prism.store.migrate import upgrade
from tests.api.conftest import MODEL, make_zip

SHARED = "platform-challenge-token-0123456789"
OPERATOR = "operator-token-abcdef-0123456789"
REGISTRY_VERSION = "2026.11.30"
HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
PLATFORM_ENV = ("BASE_CHALLENGE_SLUG", "CHALLENGE_SLUG", "CHALLENGE_DATABASE_URL", "CHALLENGE_VERSION")
PRISM_PUBLIC_PATHS = (
    "/leaderboard",
    "/architectures",
    "/training-variants",
    "/epochs",
    "/epochs/current",
    "/gpu/status",
    "/health/eval-jobs",
)


class ChallengeWeightsResponse(BaseModel):
    """The shape Platform's `ChallengeClient` validates a get_weights answer with."""

    challenge_slug: str
    epoch: int | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    computed_at: datetime


def upstream_path(path: str) -> str:
    """Platform's `prism_upstream_proxy_path` for slug "prism"."""
    normalized = posixpath.normpath(f"/{path.lstrip('/')}")
    if normalized.startswith("/v1/"):
        return normalized
    parts = [p for p in normalized.split("/") if p]
    if (
        normalized in PRISM_PUBLIC_PATHS
        or (parts and parts[0] == "architectures")
        or (len(parts) == 2 and parts[0] == "submissions")
        or (len(parts) == 3 and parts[0] == "submissions" and parts[2] == "curve")
    ):
        return f"/v1{normalized}"
    return path


def proxied(client: TestClient, path: str, **headers: str) -> Any:
    """A GET as Platform's public proxy forwards it: no Authorization, marked X-Base-Proxy."""
    forwarded = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    forwarded.update({"X-Base-Proxy": "true", "X-Base-Challenge-Slug": "prism"})
    target = upstream_path(path)
    return client.get(target if target.startswith("/") else f"/{target}", headers=forwarded)


@pytest.fixture
def platform_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment Platform's orchestrator gives a challenge container (plus the operator token)."""
    for name in ("PRISM_DATABASE_URL", "PRISM_CHALLENGE_SLUG", "PRISM_SHARED_TOKEN_FILE", "PRISM_SHARED_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    secrets = tmp_path / "run-secrets-base"
    secrets.mkdir()
    (secrets / "challenge_token").write_text(SHARED + "\n")
    (secrets / "operator_token").write_text(OPERATOR)
    monkeypatch.setenv("BASE_CHALLENGE_SLUG", "prism")
    monkeypatch.setenv("CHALLENGE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/data/challenge.sqlite3")
    monkeypatch.setenv("CHALLENGE_SHARED_TOKEN_FILE", str(secrets / "challenge_token"))
    monkeypatch.setenv("CHALLENGE_VERSION", REGISTRY_VERSION)
    monkeypatch.setenv("PRISM_OPERATOR_TOKEN_FILE", str(secrets / "operator_token"))
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def platform_client(platform_env: Path) -> Iterator[TestClient]:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client
    engine.dispose()


def test_platform_environment_names_are_read(platform_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert settings.challenge_slug == "prism" and settings.challenge_version == REGISTRY_VERSION
    assert settings.resolved_database_url == f"sqlite:///{platform_env}/data/challenge.sqlite3"
    assert settings.shared_token == SHARED
    assert settings.bind_address() == ("0.0.0.0", 8080)
    assert settings.bind_address("127.0.0.1", 9000) == ("127.0.0.1", 9000)
    monkeypatch.setenv("CHALLENGE_DATABASE_URL", "postgresql+asyncpg://c:pw@challenge-prism-postgres/challenge")
    assert get_settings().resolved_database_url == "postgresql+psycopg://c:pw@challenge-prism-postgres/challenge"
    # PRISM's own names win over Platform's.
    monkeypatch.setenv("PRISM_DATABASE_URL", "sqlite:////elsewhere/prism.db")
    monkeypatch.setenv("PRISM_CHALLENGE_SLUG", "prism-test")
    assert (get_settings().resolved_database_url, get_settings().challenge_slug) == (
        "sqlite:////elsewhere/prism.db",
        "prism-test",
    )
    monkeypatch.setenv("CHALLENGE_DOCKER_BACKEND", "cli")
    assert get_settings().sandbox_backend == "docker"
    for name in PLATFORM_ENV:
        monkeypatch.delenv(name, raising=False)
    assert Settings(data_dir=platform_env).bind_address() == ("127.0.0.1", 8000)


def test_readiness_passes_platforms_checks(platform_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    health = platform_client.get("/health", headers={"Accept": "application/json"}).json()
    assert health["status"] == "ok" and health.get("slug", "prism") == "prism"
    version = platform_client.get("/version", headers={"Accept": "application/json"}).json()
    assert version["api_version"] == "1.0"
    assert version["challenge_version"] == REGISTRY_VERSION
    assert isinstance(version["capabilities"], list)
    assert {"get_weights", "proxy_routes"} <= set(version["capabilities"])
    # Only what is switched on is advertised.
    assert "signed_public_submissions" not in version["capabilities"]
    assert "llm_policy_review" not in version["capabilities"]
    assert "docker_executor" not in version["capabilities"]
    settings = Settings(public_submissions_enabled=True, llm_review_enabled=True, sandbox_backend="broker")
    with TestClient(create_app(settings, engine=make_engine("sqlite://"))) as other:
        caps = other.get("/version").json()["capabilities"]
    assert {"signed_public_submissions", "llm_policy_review", "docker_executor"} <= set(caps)


def test_get_weights_as_platforms_challenge_client_calls_it(platform_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {SHARED}", "X-Base-Challenge-Slug": "prism", "Accept": "application/json"}
    response = platform_client.get("/internal/v1/get_weights", headers=headers)
    assert response.status_code == 200
    assert ChallengeWeightsResponse.model_validate(response.json()).challenge_slug == "prism"
    wrong = platform_client.get("/internal/v1/get_weights", headers={**headers, "X-Base-Challenge-Slug": "other"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "wrong_challenge"


def test_bridge_upload_without_filename_and_token_faults_are_told_apart(platform_client: TestClient) -> None:
    body = make_zip({"model.py": MODEL})
    headers = {
        "Authorization": f"Bearer {SHARED}",
        "X-Base-Challenge-Slug": "prism",
        "X-Base-Verified-Hotkey": HOTKEY,
        "X-Base-Verified-Nonce": "nonce-1",
        "X-Base-Request-Hash": hashlib.sha256(body).hexdigest(),
        "Content-Type": "application/octet-stream",  # Platform's default; no X-Submission-Filename
        "Accept": "application/json",
    }
    created = platform_client.post("/internal/v1/bridge/submissions", headers=headers, content=body)
    assert created.status_code == 201, created.text
    submission_id = created.json()["id"]
    bad = platform_client.post(
        "/internal/v1/bridge/submissions", headers={**headers, "Authorization": "Bearer stale"}, content=body
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "platform_token_rejected" and "not the miner" in bad.json()["detail"]
    # Platform's bridge status read goes through _forward_headers to /v1/submissions/{id}.
    status = proxied(platform_client, f"/submissions/{submission_id}")
    assert status.status_code == 200 and status.json()["id"] == submission_id
    curve = proxied(platform_client, f"/submissions/{submission_id}/curve")
    assert curve.status_code == 200 and curve.json()["points"] == []


def test_every_route_platforms_proxy_maps_for_prism_answers(platform_client: TestClient) -> None:
    for path in PRISM_PUBLIC_PATHS:
        response = proxied(platform_client, path)
        assert response.status_code == 200, (path, response.text)
    missing = proxied(platform_client, "/architectures/" + "0" * 64)
    assert missing.status_code == 404
    # One error shape: PRISM's code, and Platform's `detail` field.
    assert missing.json()["error"]["code"] == "not_found" and missing.json()["detail"]


def test_operator_surfaces_answer_only_operators_through_the_proxy(platform_client: TestClient) -> None:
    for path in ("/metrics", "/docs", "/openapi.json", "/console", "/console/login", "/redoc"):
        assert proxied(platform_client, path).status_code == 404, path
        assert proxied(platform_client, path, Authorization=f"Bearer {OPERATOR}").status_code == 404, path
    assert platform_client.get("/openapi.json").status_code == 200  # direct, on the challenge network
    login = platform_client.post("/console/login", data={"token": OPERATOR, "next": "/console"}, follow_redirects=False)
    assert login.status_code == 303
    cookie = login.cookies.get("prism_console") or platform_client.cookies.get("prism_console")
    assert cookie
    platform_client.cookies.clear()
    assert proxied(platform_client, "/metrics", Cookie=f"prism_console={cookie}").status_code == 200
    assert proxied(platform_client, "/metrics", Cookie="prism_console=1.2.3").status_code == 404


def test_failed_logins_are_throttled(platform_client: TestClient) -> None:
    for _ in range(LOGIN_FAILURES):
        assert platform_client.post("/console/login", data={"token": "guess"}).status_code == 401
    blocked = platform_client.post("/console/login", data={"token": OPERATOR}, follow_redirects=False)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert blocked.json()["error"]["code"] == "too_many_logins"


def test_responses_are_never_compressed(platform_client: TestClient) -> None:
    for path in ("/openapi.json", "/v1/leaderboard", "/v1/training-variants", "/version", "/console/login"):
        response = platform_client.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
        assert "content-encoding" not in response.headers, path
        assert not response.content.startswith(gzip.compress(b"")[:2]), path


def test_official_operation_needs_its_own_operator_token(platform_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert official_start_problem(get_settings()) is None
    monkeypatch.setenv("PRISM_OPERATOR_TOKEN_FILE", str(platform_env / "run-secrets-base" / "challenge_token"))
    assert "equals the shared Platform token" in (official_start_problem(get_settings()) or "")
    monkeypatch.delenv("PRISM_OPERATOR_TOKEN_FILE")
    assert "no operator token" in (official_start_problem(get_settings()) or "")
    for name in PLATFORM_ENV:  # a local development PRISM keeps its convenience fallback
        monkeypatch.delenv(name, raising=False)
    assert official_start_problem(get_settings()) is None
