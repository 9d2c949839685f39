from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from prism.errors import ConfigError
from prism.runtime_config import DEFAULT_RUNTIME_CONFIG
from prism.store.models import RuntimeConfigRow
from prism.store.runtime_configs import active_row, load_runtime_config, set_runtime_config


def test_defaults_without_a_row(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        active = load_runtime_config(session)
    assert active.version is None and active.config == DEFAULT_RUNTIME_CONFIG


def test_versions_and_one_active(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        v1 = set_runtime_config(session, {"rewards": {"owner_share": 0.5}}, actor="op")
    with sessions() as session, session.begin():
        v2 = set_runtime_config(session, {"rewards": {"owner_share": 0.7}}, actor="op")
    assert v2 > v1
    with sessions() as session:
        active = load_runtime_config(session)
        assert active.version == v2 and active.config.rewards.owner_share == 0.7
        assert session.query(RuntimeConfigRow).filter_by(active=True).count() == 1


@pytest.mark.parametrize(
    "document",
    [
        {"gpu": {"max_gpu_count": 9}},
        {"gpu": {"official_profile": {"gpu_count": 9}}},
        {"gpu": {"official_profile": {"gpu_count": True}}},
        {"gpu": {"official_profile": {"gpu_count": "2"}}},
        {"gpu": {"official_profile": {"gpu_count": 1.5}}},
        {"gpu": {"official_profile": {"gpu_count": -1}}},
        {"unknown_section": {}},
    ],
)
def test_invalid_documents_are_refused(sessions: sessionmaker[Session], document: dict[str, object]) -> None:
    with sessions() as session, pytest.raises(ConfigError):
        set_runtime_config(session, document, actor="op")


def test_a_corrupted_active_row_fails_closed(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        session.add(RuntimeConfigRow(document={"gpu": {"max_gpu_count": 99}}, active=True, created_by="sql"))
    with sessions() as session:
        assert active_row(session) is not None
        with pytest.raises(ConfigError, match="max_gpu_count"):
            load_runtime_config(session)
