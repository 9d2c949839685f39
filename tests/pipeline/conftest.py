"""Fixtures for tests that run the real worker: a shared locked dataset and fast budgets."""

from __future__ import annotations

import io
import shutil
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from prism.api.app import create_app
from prism.config import Settings
from prism.evaluation.data import Datasheet, write_dataset
from prism.evaluation.fixture import fixture_documents
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.runtime_configs import set_runtime_config
from tests.conftest import TOKEN

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny_transformer"
HOTKEYS = {
    "alice": "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
    "bob": "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
    "charlie": "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y",
    "dave": "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy",
}
# Small but real budgets: every phase runs in the sandbox, in seconds.
FAST_EVALUATION: dict[str, Any] = {
    "seq_len": 64,
    "batch_size": 4,
    "token_budget": 4096,
    "smoke_token_budget": 4096,
    "heldout_tokens": 2048,
    "causality_probes": 2,
}
CPU_OFFICIAL: dict[str, Any] = {
    "gpu": {"official_profile": {"gpu_count": 0, "gpu_type": None, "cpus": 2, "memory": "4g", "memory_swap": "4g"}},
    "evaluation": FAST_EVALUATION,
}
SMOKE_ONLY: dict[str, Any] = {"evaluation": FAST_EVALUATION}


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Official runs refuse the public fixture, so the worker's tests lock a corpus of their own.
    path = tmp_path_factory.mktemp("dataset") / "locked"
    path.mkdir()
    sheet = Datasheet(name="tests-corpus", source="tests/pipeline (fixture grammar, test seed)", revision="1")
    write_dataset(fixture_documents(seed=7), path, datasheet=sheet)
    return path


@pytest.fixture
def worker_settings(settings: Settings, dataset_dir: Path) -> Settings:
    return settings.model_copy(
        update={"dataset_dir": dataset_dir, "worker_retry_base_seconds": 0.0, "worker_heartbeat_seconds": 1.0}
    )


@pytest.fixture
def worker_sessions(worker_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(worker_settings.resolved_database_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def use_runtime_config(sessions: sessionmaker[Session], document: dict[str, Any]) -> None:
    with sessions() as session, session.begin():
        set_runtime_config(session, document, actor="test")


@pytest.fixture
def api(worker_settings: Settings, worker_sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    engine = make_engine(worker_settings.resolved_database_url)
    with TestClient(create_app(worker_settings, engine=engine)) as client:
        yield client
    engine.dispose()


def project_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(files.items()):
            archive.writestr(name, text)
    return buffer.getvalue()


def example_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in EXAMPLE.iterdir() if p.is_file() and p.suffix in (".py", ".yaml")}


def submit(client: TestClient, hotkey: str, data: bytes, filename: str = "project.zip") -> str:
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Base-Verified-Hotkey": hotkey, "X-Submission-Filename": filename}
    response = client.post("/internal/v1/bridge/submissions", headers=headers, content=data)
    assert response.status_code == 201, response.text
    submission_id: str = response.json()["id"]
    return submission_id


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def fresh_weights(client: TestClient) -> dict[str, float]:
    """get_weights once the background refresh has seen everything written before this call.

    The route never computes: it serves the snapshot the refresher keeps. Waking the refresher
    and waiting for a snapshot computed after now makes the answer reflect the test's writes.
    """
    asked = datetime.now(UTC)
    client.app.state.prism.weights.invalidate()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while True:
        body = client.get("/internal/v1/get_weights", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        if datetime.fromisoformat(body["computed_at"]) >= asked and "error" not in body["metadata"]:
            weights: dict[str, float] = body["weights"]
            return weights
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
