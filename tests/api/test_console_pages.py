"""Console pages beyond the review flow: errors as pages, leaderboard, families, config history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from prism.api.app import create_app
from prism.api.console import human_time
from prism.config import Settings
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.runtime_configs import set_runtime_config
from tests.api.console_scored import Scored, seed_scored
from tests.api.test_console import login


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def anon(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine), follow_redirects=False) as client:
        yield client


@pytest.fixture
def scored(settings: Settings, sessions: sessionmaker[Session]) -> list[Scored]:
    with sessions() as session:
        return seed_scored(session, settings)


def test_errors_are_pages_not_json(anon: TestClient) -> None:
    login(anon)
    for path, status in (
        ("/console/submissions/00000000-0000-0000-0000-000000000000", 404),
        ("/console/no-such-page", 404),
        ("/console/submissions?page=-1", 422),
        ("/console/architectures/" + "f" * 64, 404),
    ):
        answer = anon.get(path)
        assert answer.status_code == status, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert 'id="error-page"' in answer.text and "<nav>" in answer.text
        assert not answer.text.lstrip().startswith("{")
    # The JSON routes keep the JSON body.
    assert anon.get("/v1/submissions/nope").json()["error"]["code"] == "not_found"


def test_unknown_console_page_without_a_session_is_a_page_too(anon: TestClient) -> None:
    answer = anon.get("/console/nothing-here")
    assert answer.status_code == 404 and 'id="error-page"' in answer.text and "Log in" in answer.text


def test_human_times() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert human_time((now - timedelta(minutes=5)).isoformat(), now=now) == "2026-11-30 11:55 UTC (5 min ago)"
    assert human_time(now - timedelta(hours=3), now=now).endswith("(3 h ago)")
    assert human_time(None) == "—"


def _column(html: str, index: int) -> list[str]:
    body = html.split('<table class="list board" id="leaderboard">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr data-rank=\"\d+\">(.*?)</tr>", body, re.S)
    return [re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[index]).strip() for row in rows]


def test_leaderboard_has_weight_heldout_params_names_and_sorts(anon: TestClient, scored: list[Scored]) -> None:
    login(anon)
    html = anon.get("/console/leaderboard").text
    for label in ("Model", "Final score", "Held-out bits/byte", "Parameters", "Weight"):
        assert label in html
    assert _column(html, 1) == ["bravo-net", "alpha-net", "charlie-net"]  # by rank: lowest bits/byte first
    assert _column(html, 5) == ["1.6000", "2.1000", "3.1000"]  # held-out
    assert _column(html, 6) == ["50,000", "900,000", "4,000,000"]
    weights = [float(w) for w in _column(html, 7)]
    # Charlie trails Alice in Alice's family: only the family's best earns (scoring.ranking).
    assert abs(sum(weights) - 1.0) < 1e-3 and weights[0] > 0 and weights[1] > 0 and weights[2] == 0.0
    by_params = anon.get("/console/leaderboard?sort=params&dir=desc").text
    assert _column(by_params, 1) == ["charlie-net", "alpha-net", "bravo-net"]
    by_name = anon.get("/console/leaderboard?sort=name&dir=asc").text
    assert _column(by_name, 1) == ["alpha-net", "bravo-net", "charlie-net"]
    assert _column(by_name, 0) == ["2", "1", "3"]  # sorting never changes the rank
    assert anon.get("/console/leaderboard?sort=bogus").status_code == 422


def test_public_leaderboard_page(anon: TestClient, scored: list[Scored]) -> None:
    page = anon.get("/leaderboard")  # no login
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert _column(page.text, 1) == ["bravo-net", "alpha-net", "charlie-net"]
    assert "/console/" not in page.text.replace("/console/static/console.css", "")
    assert "Content-Security-Policy" in page.headers


def test_architecture_family_page(anon: TestClient, scored: list[Scored]) -> None:
    login(anon)
    families = anon.get("/console/architectures").text
    assert f'href="/console/architectures/{"a" * 64}"' in families
    page = anon.get(f"/console/architectures/{'a' * 64}").text
    assert scored[0].hotkey in page  # the owner
    members = page.split('id="family-members"', 1)[1]
    assert scored[0].sid[:12] in members and scored[2].sid[:12] in members and scored[1].sid[:12] not in members


def test_runtime_config_history_page(anon: TestClient, sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        set_runtime_config(session, {"rewards": {"owner_share": 0.5}}, actor="operator:alice", comment="builders")
    login(anon)
    page = anon.get("/console/runtime-config").text
    assert 'id="config-v1"' in page and "operator:alice" in page and "builders" in page
    assert "rewards.owner_share" in page and "0.6" in page and "0.5" in page
    assert 'id="operator">operator:operator<' in page  # who is logged in
