"""500 submissions from 50 concurrent clients over real sockets: each stored exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from prism.config import Settings
from prism.store.db import make_engine, make_session_factory
from prism.store.models import AuditEvent, Submission
from tests.api.conftest import MODEL
from tests.conftest import TOKEN
from tests.live_server import live_server

HOTKEYS = [
    "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
    "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
]
CLIENTS = 50
PER_CLIENT = 10


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_bridge_submissions_are_stored_once(
    settings: Settings, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        settings = settings.model_copy(update={"database_url": request.getfixturevalue("fresh_postgres_url")})

    def client_run(client_index: int) -> list[str]:
        ids = []
        with httpx.Client(timeout=60) as http:
            for i in range(PER_CLIENT):
                body = MODEL + f"\nSUBMISSION = {client_index * PER_CLIENT + i}\n"
                headers = {
                    "Authorization": f"Bearer {TOKEN}",
                    "X-Base-Verified-Hotkey": HOTKEYS[client_index % 2],
                    "X-Submission-Filename": "model.py",
                }
                response = http.post(f"{url}/internal/v1/bridge/submissions", headers=headers, content=body)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
                if i == 0:  # a retried request (same bytes, same hotkey) must not add a row
                    again = http.post(f"{url}/internal/v1/bridge/submissions", headers=headers, content=body)
                    assert again.status_code == 200 and again.json()["id"] == ids[-1]
        return ids

    with live_server(settings) as url, ThreadPoolExecutor(CLIENTS) as pool:
        ids = [sid for batch in pool.map(client_run, range(CLIENTS)) for sid in batch]

    assert len(ids) == len(set(ids)) == CLIENTS * PER_CLIENT
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == CLIENTS * PER_CLIENT
        created = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "created"))
        assert created == CLIENTS * PER_CLIENT
    engine.dispose()
