"""get_weights is served from memory: no SQL on the read path, kept current by the background
refresh when results change (and only then), on both backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from prism.api.app import create_app
from prism.api.weights import WeightsCache, change_marker, compute_snapshot
from prism.config import Settings
from prism.store.base import utcnow
from prism.store.db import make_session_factory
from prism.store.submissions import epoch_at
from tests.api.conftest import MODEL, make_zip
from tests.conftest import TOKEN
from tests.scored import seed_scored

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app_client(engine: Engine, settings: Settings) -> Iterator[TestClient]:
    fast = settings.model_copy(update={"weights_refresh_seconds": 0.1})
    with TestClient(create_app(fast, engine=engine)) as client:
        yield client


def _body(client: TestClient) -> dict[str, Any]:
    response = client.get("/internal/v1/get_weights", headers=AUTH)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _wait(client: TestClient, hotkeys: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (body := _body(client))["metadata"].get("submissions_considered") != hotkeys:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


def test_reads_issue_no_sql_and_changes_arrive_by_themselves(
    app_client: TestClient, engine: Engine, sessions: sessionmaker[Session], settings: Settings
) -> None:
    epoch = epoch_at(utcnow(), settings.epoch_seconds)
    with sessions() as session, session.begin():
        seed_scored(session, hotkeys=40, families=10, epoch=epoch)
    first = _wait(app_client, 40)
    with sessions() as session:
        assert first["weights"] == pytest.approx(compute_snapshot(session, settings).weights)

    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    cache = app_client.app.state.prism.weights  # type: ignore[attr-defined]
    cache.stop()  # the refresher's own polls would be counted too
    time.sleep(0.3)
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            assert _body(app_client)["weights"] == first["weights"]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []  # the read path never touches the database
    cache.start()

    # Intake changes nothing the weights read: no recompute.
    upload = app_client.post(
        "/internal/v1/bridge/submissions",
        headers={
            **AUTH,
            "X-Base-Verified-Hotkey": "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
            "X-Submission-Filename": "project.zip",
        },
        content=make_zip({"model.py": MODEL}),
    )
    assert upload.status_code == 201
    time.sleep(0.5)
    assert _body(app_client)["computed_at"] == first["computed_at"]

    # New scored results arrive without any reader asking for them.
    with sessions() as session, session.begin():
        seed_scored(session, hotkeys=10, families=10, epoch=epoch, seed=1, start=1000)
    second = _wait(app_client, 50)
    assert second["computed_at"] > first["computed_at"]
    assert set(second["weights"]) - set(first["weights"])
    assert sum(second["weights"].values()) == pytest.approx(1.0)


def test_an_idle_sqlite_database_costs_the_refresher_no_query(sqlite_engine: Engine, settings: Settings) -> None:
    sessions = make_session_factory(sqlite_engine)
    epoch = epoch_at(utcnow(), settings.epoch_seconds)
    with sessions() as session, session.begin():
        seed_scored(session, hotkeys=20, families=5, epoch=epoch)
    cache = WeightsCache(settings, sessions)  # not started: each refresh is called here
    assert cache.refresh()
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(sqlite_engine, "before_cursor_execute", count)
    try:
        assert not cache.refresh() and not cache.refresh()
        assert statements == []  # nobody committed: not even the marker's counts ran
        with sessions() as session, session.begin():  # another connection commits a new result
            seed_scored(session, hotkeys=5, families=5, epoch=epoch, seed=1, start=1000)
        statements.clear()
        assert cache.refresh()
        assert statements  # noticed, and recomputed
        assert cache.get().metadata["submissions_considered"] == 25
        cache.invalidate()  # an operator action asks for a refresh even with nothing committed
        statements.clear()
        cache.refresh()
        assert statements
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", count)
        cache.stop()


def test_the_change_marker_is_one_primary_key_read(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Whatever the number of results: one statement, on the generation row (counting was O(n))."""
    epoch = epoch_at(utcnow(), settings.epoch_seconds)
    with sessions() as session, session.begin():
        seed_scored(session, hotkeys=30, families=5, epoch=epoch)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    with sessions() as session:
        event.listen(engine, "before_cursor_execute", count)
        try:
            first = change_marker(session, settings)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    reads = [s for s in statements if s != "BEGIN"]  # SQLite's explicit BEGIN (store/db.py)
    assert len(reads) == 1 and "FROM weights_generation" in reads[0] and "count(" not in reads[0].lower()
    with sessions() as session, session.begin():
        seed_scored(session, hotkeys=1, families=1, epoch=epoch, seed=1, start=100)
    with sessions() as session:
        second = change_marker(session, settings)
    assert second.generation == first.generation + 1 and second.epoch == first.epoch == epoch
