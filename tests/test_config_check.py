"""A missing secret file is found at start and by /health, and its path never reaches a caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from prism.api.app import create_app
from prism.cli.server import run_api
from prism.config import Settings
from prism.config_check import configuration_problems
from prism.errors import ConfigError
from prism.store.db import make_engine
from prism.store.migrate import upgrade


def test_problems_name_the_variable_not_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret-dir" / "llm-key"
    monkeypatch.setenv("PRISM_LLM_API_KEY_FILE", str(secret))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.setenv("PRISM_BROKER_TOKEN_FILE", str(empty))
    problems = configuration_problems()
    assert [p.split()[0] for p in problems] == ["PRISM_LLM_API_KEY_FILE", "PRISM_BROKER_TOKEN_FILE"]
    assert all(str(tmp_path) not in p for p in problems)


def test_health_and_routes_after_the_token_file_goes_missing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    with TestClient(create_app(settings, engine=engine)) as client:
        assert client.get("/health").json()["status"] == "ok"
        missing = tmp_path / "run" / "secrets" / "prism-token"
        monkeypatch.setenv("PRISM_SHARED_TOKEN_FILE", str(missing))
        fresh = Settings(data_dir=settings.data_dir, database_url=settings.resolved_database_url)
        client.app.state.settings = fresh  # type: ignore[attr-defined]
        client.app.state.prism.settings = fresh  # type: ignore[attr-defined]
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        assert "PRISM_SHARED_TOKEN_FILE" in health.text and str(missing) not in health.text
        answer = client.get("/internal/v1/get_weights", headers={"Authorization": "Bearer x"})
        assert answer.status_code == 503
        assert str(missing) not in answer.text and "prism-token" not in answer.text
    engine.dispose()


def test_serve_refuses_to_start_without_its_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PRISM_SHARED_TOKEN_FILE", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="PRISM_SHARED_TOKEN_FILE"):
        run_api(host="127.0.0.1", port=1, with_worker=False)
    assert not (tmp_path / "data").exists()  # refused before touching the database
