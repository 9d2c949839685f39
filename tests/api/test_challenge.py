"""GET /v1/challenge publishes what a miner is held to, and nothing secret."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from prism.config import Settings
from prism.runtime_config import DEFAULT_RUNTIME_CONFIG
from prism.store.db import make_engine, make_session_factory
from prism.store.runtime_configs import set_runtime_config


def test_challenge_parameters_follow_the_runtime_config(client: TestClient, settings: Settings) -> None:
    first = client.get("/v1/challenge")
    assert first.status_code == 200
    body = first.json()
    budget = DEFAULT_RUNTIME_CONFIG.evaluation
    assert body["runtime_config_version"] is None
    assert body["official"]["token_budget"] == budget.token_budget and body["official"]["score_eligible"]
    assert body["smoke"]["token_budget"] == budget.smoke_token_budget and not body["smoke"]["score_eligible"]
    assert body["official"]["parameter_cap"] == budget.parameter_cap
    assert body["official"]["seq_len"] == budget.seq_len and body["official"]["batch_size"] == budget.batch_size
    assert body["contract"]["vocab_size"] == 256
    assert body["scoring"]["formula"] == "final_score = 2 ** (-bits_per_byte)"
    assert body["data"]["public_fixture"] is True and body["data"]["name"] == "prism-fixture"
    assert body["epoch"]["epoch_seconds"] == settings.epoch_seconds
    # The default official profile wants a GPU; this host has none: runs here do not score.
    assert body["this_host_scores"] is False
    # Nothing secret: not the data order, not a path, not a token.
    text = json.dumps(body)
    assert str(budget.data_order_seed) not in text and "data_order_seed" not in text
    assert str(settings.data_dir) not in text

    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session, session.begin():
        set_runtime_config(
            session,
            {"gpu": {"official_profile": {"gpu_count": 0, "gpu_type": None}}, "evaluation": {"seq_len": 64}},
            actor="test",
        )
    engine.dispose()
    second = client.get("/v1/challenge").json()
    assert second["runtime_config_version"] == 1
    assert second["official"]["seq_len"] == 64 and second["official"]["gpu_count"] == 0
    assert second["this_host_scores"] is True  # a CPU-only official profile scores anywhere
