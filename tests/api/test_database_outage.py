"""A real PostgreSQL outage and a real hang (a TCP proxy on loopback that drops or stalls the
connection): get_weights answers every poll from memory, every other database route answers
503 with a JSON body and Retry-After, and all of them recover on their own."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient

from prism.api.app import create_app
from prism.config import Settings
from prism.store.base import utcnow
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.submissions import epoch_at
from tests.api.conftest import MODEL, make_zip
from tests.conftest import TOKEN
from tests.db_proxy import TcpProxy, tcp_proxy
from tests.scored import seed_scored

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)
    netloc = (host[0] + "@" if len(host) == 2 else "") + f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def proxied(fresh_postgres_url: str, settings: Settings) -> Iterator[tuple[TestClient, TcpProxy]]:
    direct = make_engine(fresh_postgres_url)
    upgrade(direct)
    with make_session_factory(direct)() as session, session.begin():
        seed_scored(session, hotkeys=3, families=2, epoch=epoch_at(utcnow(), settings.epoch_seconds))
    direct.dispose()
    target = urlsplit(fresh_postgres_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        fast = settings.model_copy(
            update={"request_timeout_seconds": 2.0, "db_connect_timeout_seconds": 1.0, "weights_refresh_seconds": 0.2}
        )
        engine = make_engine(_via(fresh_postgres_url, proxy.port), connect_timeout=1, pool_timeout=1)
        with TestClient(create_app(fast, engine=engine)) as client:
            yield client, proxy
        proxy.resume()
        engine.dispose()


def _weights(client: TestClient) -> dict[str, float]:
    started = time.monotonic()
    response = client.get("/internal/v1/get_weights", headers=AUTH)
    assert response.status_code == 200
    assert time.monotonic() - started < 1.0, "get_weights waited on the database"
    weights: dict[str, float] = response.json()["weights"]
    return weights


def _wait_for_weights(client: TestClient) -> dict[str, float]:
    deadline = time.monotonic() + 30
    while not (weights := _weights(client)):
        assert time.monotonic() < deadline, "the first weights snapshot never came"
        time.sleep(0.05)
    return weights


def _assert_503(response_status: int, headers: dict[str, str], body: dict[str, object]) -> None:
    assert response_status == 503
    assert headers.get("retry-after")
    assert isinstance(body.get("error"), dict)


def _database_routes(client: TestClient, submission_id: str) -> list[tuple[int, dict[str, str], dict[str, object]]]:
    answers = []
    for response in (
        client.get(f"/v1/submissions/{submission_id}"),
        client.get("/v1/leaderboard"),
        client.get("/v1/architectures"),
        client.post(
            "/internal/v1/bridge/submissions",
            headers={**AUTH, "X-Base-Verified-Hotkey": HOTKEY, "X-Submission-Filename": "project.zip"},
            content=make_zip({"model.py": MODEL + f"\n# {time.time_ns()}\n"}),
        ),
    ):
        assert response.headers["content-type"].startswith("application/json")
        answers.append((response.status_code, dict(response.headers), response.json()))
    return answers


@pytest.mark.parametrize("failure", ["outage", "hang"])
def test_weights_answer_and_other_routes_503_then_recover(proxied: tuple[TestClient, TcpProxy], failure: str) -> None:
    client, proxy = proxied
    weights = _wait_for_weights(client)
    stored = client.post(
        "/internal/v1/bridge/submissions",
        headers={**AUTH, "X-Base-Verified-Hotkey": HOTKEY, "X-Submission-Filename": "project.zip"},
        content=make_zip({"model.py": MODEL}),
    )
    assert stored.status_code == 201, stored.text
    submission_id = stored.json()["id"]

    proxy.close() if failure == "outage" else proxy.pause()
    for _ in range(3):  # three Platform polls, each answered from memory
        assert _weights(client) == weights
    for status, headers, body in _database_routes(client, submission_id):
        _assert_503(status, headers, body)
    assert _weights(client) == weights

    proxy.resume()
    deadline = time.monotonic() + 30
    while True:
        answers = _database_routes(client, submission_id)
        if all(status in (200, 201) for status, _, _ in answers):
            break
        assert all(status == 503 for status, _, _ in answers), answers
        assert time.monotonic() < deadline, "the routes did not recover on their own"
        time.sleep(0.2)
    assert _weights(client) == weights


def test_a_write_lock_held_elsewhere_gets_503_json_not_500(settings: Settings) -> None:
    fast = settings.model_copy(update={"request_timeout_seconds": 1.0})
    engine = make_engine(fast.resolved_database_url)
    upgrade(engine)
    holder = sqlite3.connect(fast.resolved_database_url.removeprefix("sqlite:///"), isolation_level=None)
    headers = {**AUTH, "X-Base-Verified-Hotkey": HOTKEY, "X-Submission-Filename": "project.zip"}
    body = make_zip({"model.py": MODEL})
    with TestClient(create_app(fast, engine=engine)) as client:
        holder.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
        try:
            response = client.post("/internal/v1/bridge/submissions", headers=headers, content=body)
            assert response.status_code == 503 and response.headers["retry-after"]
            assert response.json()["error"]["code"] == "request_timeout"
            assert _weights(client) == {}  # get_weights still answers at once
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        deadline = time.monotonic() + 60
        while (
            response := client.post("/internal/v1/bridge/submissions", headers=headers, content=body)
        ).status_code != 201:
            # The abandoned first attempt may have stored it once the lock was free: same bytes, 200.
            if response.status_code == 200:
                break
            assert response.status_code == 503 and time.monotonic() < deadline, response.text
            time.sleep(0.2)
    engine.dispose()
