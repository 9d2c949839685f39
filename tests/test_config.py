"""Secret precedence, the inline-token warning, and settings errors that name the variable."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from prism.config import Settings, get_settings
from prism.errors import ConfigError

NAMES = ("PRISM_SHARED_TOKEN_FILE", "CHALLENGE_SHARED_TOKEN_FILE", "PRISM_SHARED_TOKEN", "CHALLENGE_SHARED_TOKEN")


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*NAMES, "PRISM_OPERATOR_TOKEN", "PRISM_OPERATOR_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


def _file(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n")
    return str(path)


def test_files_win_in_the_documented_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHALLENGE_SHARED_TOKEN", "inline-challenge")
    assert Settings().shared_token == "inline-challenge"
    monkeypatch.setenv("PRISM_SHARED_TOKEN", "inline-prism")
    assert Settings().shared_token == "inline-prism"
    monkeypatch.setenv("CHALLENGE_SHARED_TOKEN_FILE", _file(tmp_path, "c", "file-challenge"))
    assert Settings().shared_token == "file-challenge"
    monkeypatch.setenv("PRISM_SHARED_TOKEN_FILE", _file(tmp_path, "p", "file-prism"))
    assert Settings().shared_token == "file-prism"


def test_inline_token_logs_a_warning(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PRISM_SHARED_TOKEN", "inline-secret-value")
    with caplog.at_level(logging.WARNING):
        assert Settings().shared_token == "inline-secret-value"
    assert "secret file" in caplog.text and "inline-secret-value" not in caplog.text


def test_unreadable_or_empty_secret_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_SHARED_TOKEN", "would-be-fallback")
    monkeypatch.setenv("PRISM_SHARED_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="PRISM_SHARED_TOKEN_FILE"):
        _ = Settings().shared_token
    monkeypatch.setenv("PRISM_SHARED_TOKEN_FILE", _file(tmp_path, "empty", ""))
    with pytest.raises(ConfigError, match="empty"):
        _ = Settings().shared_token


def test_operator_token_falls_back_to_the_shared_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_SHARED_TOKEN_FILE", _file(tmp_path, "s", "shared"))
    assert Settings().operator_token == "shared"
    monkeypatch.setenv("PRISM_OPERATOR_TOKEN_FILE", _file(tmp_path, "o", "operator"))
    settings = Settings()
    assert settings.operator_token == "operator" and settings.known_secrets() == ("operator", "shared")


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISM_MAX_FILES", "0")
    with pytest.raises(ConfigError, match="PRISM_MAX_FILES"):
        get_settings()


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'prism.db').resolve()}"
    assert settings.resolved_dataset_dir == tmp_path / "dataset"
