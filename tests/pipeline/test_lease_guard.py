"""A lost lease stops the submission's container jobs too, not only local sandboxes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prism.config import Settings
from prism.evaluation.phase import PHASES
from prism.pipeline.lease_guard import stop_container_jobs
from prism.sandbox import job_id_for
from tests.sandbox.broker_server import TOKEN, StandInBroker
from tests.sandbox.test_docker import _calls, _fake_docker


def test_docker_jobs_of_the_submission_are_removed_by_label(tmp_path: Path) -> None:
    script, log = _fake_docker(tmp_path, run="exit 0")
    settings = Settings(sandbox_backend="docker", docker_binary=str(script))
    assert stop_container_jobs(settings, "sub-lost") == 2  # the fake lists two containers
    calls = _calls(log)
    assert calls[0][:4] == ["ps", "--all", "--quiet", "--filter"] and calls[0][4] == "label=prism.submission=sub-lost"
    assert calls[1] == ["rm", "--force", "cafe01", "cafe02"]


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInBroker]:
    token = tmp_path / "broker-token"
    token.write_text(TOKEN)
    monkeypatch.setenv("PRISM_BROKER_TOKEN_FILE", str(token))
    with StandInBroker(Settings(data_dir=tmp_path / "broker-data")) as server:
        yield server


def test_broker_jobs_of_every_phase_and_attempt_are_cleaned(broker: StandInBroker) -> None:
    settings = Settings(sandbox_backend="broker", broker_url=broker.url, worker_max_infra_retries=1)
    assert stop_container_jobs(settings, "sub-lost") == 3 * len(PHASES)
    cleaned = {payload["job_id"] for path, _, payload in broker.requests if path.endswith("/cleanup")}
    assert cleaned == {job_id_for("sub-lost", attempt, phase) for attempt in range(3) for phase in PHASES}


def test_a_broker_that_cannot_be_reached_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(sandbox_backend="broker", broker_url="http://127.0.0.1:9")
    stop_container_jobs(settings, "sub-lost")
    assert "could not stop the container jobs" in caplog.text
