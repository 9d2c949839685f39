from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TOKEN


def test_health_and_version(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "slug": "prism", "version": "1"}
    version = client.get("/version").json()
    assert {"api_version", "challenge_version", "sdk_version", "capabilities"} <= set(version)
    assert "bridge_submissions" in version["capabilities"]


def test_weights_are_empty_before_scoring(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = client.get("/internal/v1/get_weights", headers=headers).json()
    assert body["challenge_slug"] == "prism" and body["weights"] == {}
    assert {"epoch", "metadata", "computed_at"} <= set(body)


def test_epoch_leaderboard_architectures(client: TestClient) -> None:
    epoch = client.get("/v1/epochs/current").json()
    assert epoch["ends_at"] - epoch["starts_at"] == epoch["epoch_seconds"]
    assert client.get("/v1/leaderboard").json() == {"epoch": epoch["epoch"], "rows": []}
    assert client.get("/v1/architectures").json() == {"architectures": []}
    assert client.get("/v1/leaderboard?epoch=-1").status_code == 422


def test_metrics_counts_each_state(client: TestClient) -> None:
    text = client.get("/metrics").text
    for state in ("rejected", "quarantined", "held", "failed", "pending", "completed"):
        assert f'prism_submissions{{state="{state}"}}' in text
    assert "prism_queue_depth" in text and "prism_oldest_pending_age_seconds" in text
