"""Fixtures shared by every test folder: databases on both backends, settings, the app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from prism.api.weights import stop_all as stop_weights_refreshers
from prism.config import Settings
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade

POSTGRES_URL = os.environ.get("PRISM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    try:
        probe = create_engine(POSTGRES_URL)
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    available = _postgres_available()
    if not available and os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI and is not reachable at {POSTGRES_URL}")
    return available


def postgres_schema_url(schema: str) -> str:
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture
def fresh_postgres_url(postgres_available: bool) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new empty schema, dropped afterwards."""
    if not postgres_available:
        pytest.skip("PostgreSQL is not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'prism.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'prism.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


TOKEN = "test-shared-token-0123456789"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in (
        "PRISM_SHARED_TOKEN",
        "CHALLENGE_SHARED_TOKEN",
        "PRISM_SHARED_TOKEN_FILE",
        "CHALLENGE_SHARED_TOKEN_FILE",
        "PRISM_OPERATOR_TOKEN",
        "PRISM_OPERATOR_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    token_file = tmp_path / "shared-token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv("PRISM_SHARED_TOKEN_FILE", str(token_file))
    return Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'prism.db'}")


@pytest.fixture(autouse=True)
def _stop_weights_refreshers() -> Iterator[None]:
    """An app a test made and dropped must not go on refreshing from a database that is gone."""
    yield
    stop_weights_refreshers(wait=2.0)
