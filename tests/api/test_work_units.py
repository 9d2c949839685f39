"""Platform's work-unit routes and the validators' signed ones: who may claim, fetch and report what."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.evaluation.metrics import LossCurve
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import Submission
from prism.store.validators import ValidatorUnit
from prism.validators import units as unit_store
from prism.validators.signing import Kind, ValidatorKey
from tests.conftest import TOKEN
from tests.pipeline.conftest import HOTKEYS, example_files, project_zip, submit, use_runtime_config
from tests.validators.conftest import key, validators_config

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Base-Challenge-Slug": "prism"}
JOB = {
    "submission_id": "s",
    "budget": {
        "seq_len": 64,
        "batch_size": 4,
        "token_budget": 1024,
        "data_order_seed": 777111,
        "wall_clock_seconds": 60,
    },
    "mode": "official",
    "gpu_count": 0,
    "gpu_type": None,
    "dataset_fingerprint": "f" * 64,
    "code_hash": "c" * 64,
    "filename": "project.zip",
}


@pytest.fixture
def db(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def units(client: TestClient, db: sessionmaker[Session]) -> tuple[str, list[str], str]:
    """A submission with two open units under a validators runtime config: (submission, unit ids, archive sha)."""
    use_runtime_config(db, validators_config(lease_seconds=600))
    sid = submit(client, HOTKEYS["alice"], project_zip(example_files()))
    with db() as session, session.begin():
        submission = session.get(Submission, sid)
        assert submission is not None
        opened = unit_store.open_units(
            session,
            submission_id=sid,
            hotkey=submission.hotkey,
            archive_sha256=submission.archive_sha256,
            job=JOB,
            runtime_config_version=1,
            count=2,
        )
        ids, archive = [u.id for u in opened], submission.archive_sha256
    return sid, ids, archive


def envelope(signer: ValidatorKey, kind: Kind, unit: str, archive: str, payload: Any = None, **overrides: Any) -> Any:
    body = signer.sign(slug="prism", kind=kind, work_unit_id=unit, archive_sha256=archive, payload=payload or {})
    return {**body.to_json(), **overrides}


def ok_result() -> dict[str, Any]:
    curve = LossCurve((5.0, 4.0, 3.5, 3.0), (256, 256, 256, 256)).encode()
    weights = b"safetensors-bytes"
    return {
        "status": "ok",
        "figures": {
            "train": {
                "bits_per_byte": 1.0,
                "loss_curve_sha256": hashlib.sha256(curve).hexdigest(),
                "weights_sha256": hashlib.sha256(weights).hexdigest(),
            }
        },
        "artifacts": {"loss_curve": base64.b64encode(curve).decode(), "weights": base64.b64encode(weights).decode()},
    }


def claim(client: TestClient, signer: ValidatorKey, unit: str, archive: str) -> Any:
    return client.post(f"/v1/validators/work_units/{unit}/claim", json=envelope(signer, "claim", unit, archive))


def test_listing_has_platforms_shape_and_no_secret(client: TestClient, units: tuple[str, list[str], str]) -> None:
    sid, ids, archive = units
    assert client.get("/internal/v1/work_units").status_code == 401
    wrong = client.get("/internal/v1/work_units", headers={**AUTH, "X-Base-Challenge-Slug": "other"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "wrong_challenge"
    response = client.get("/internal/v1/work_units", headers=AUTH)
    assert response.status_code == 200
    listed = response.json()["work_units"]
    assert [u["submission_id"] for u in listed] == ids
    unit = listed[0]
    assert unit["submission_ref"] == HOTKEYS["alice"] and "task_id" not in unit and "job_id" not in unit
    payload = unit["payload"]
    assert payload["prism_submission_id"] == sid and payload["archive_sha256"] == archive
    assert payload["runtime_config_version"] == 1 and payload["phases"] == ["inspect", "train"]
    assert payload["claim_path"] == f"/v1/validators/work_units/{ids[0]}/claim"
    text = response.text
    assert "777111" not in text and "probe_seed" not in text and "data_order_seed" not in text


def test_claim_fetch_and_report_once(client: TestClient, units: tuple[str, list[str], str]) -> None:
    _, ids, archive = units
    honest = key("honest1")
    answer = claim(client, honest, ids[0], archive)
    assert answer.status_code == 200, answer.text
    job = answer.json()["job"]
    assert isinstance(job["probe_seed"], int) and job["budget"]["data_order_seed"] == 777111
    fetched = client.post(answer.json()["archive_path"], json=envelope(honest, "archive", ids[0], archive))
    assert fetched.status_code == 200 and hashlib.sha256(fetched.content).hexdigest() == archive

    result = envelope(honest, "result", ids[0], archive, ok_result())
    posted = client.post(f"/v1/validators/work_units/{ids[0]}/result", json=result)
    assert posted.status_code == 200 and posted.json()["accepted"] is True
    replay = client.post(f"/v1/validators/work_units/{ids[0]}/result", json=result)
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "replayed"
    again = client.post(
        f"/v1/validators/work_units/{ids[0]}/result", json=envelope(honest, "result", ids[0], archive, ok_result())
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reported"


def test_only_the_assigned_validator_counts(client: TestClient, units: tuple[str, list[str], str]) -> None:
    _, ids, archive = units
    assert claim(client, key("honest1"), ids[0], archive).status_code == 200
    other = key("honest2")
    taken = claim(client, other, ids[0], archive)
    assert taken.status_code == 403 and taken.json()["error"]["code"] == "unit_not_assigned"
    stolen = client.post(f"/v1/validators/archives/{archive}", json=envelope(other, "archive", ids[0], archive))
    assert stolen.status_code == 403
    wrong_unit = client.post(
        f"/v1/validators/work_units/{ids[0]}/result", json=envelope(other, "result", ids[0], archive, ok_result())
    )
    assert wrong_unit.status_code == 403 and wrong_unit.json()["error"]["code"] == "unit_not_assigned"


def test_strangers_forgeries_and_stale_envelopes_are_refused(
    client: TestClient, units: tuple[str, list[str], str]
) -> None:
    _, ids, archive = units
    stranger = claim(client, key("outsider"), ids[0], archive)
    assert stranger.status_code == 403 and stranger.json()["error"]["code"] == "validator_not_allowed"
    forged = envelope(key("outsider"), "claim", ids[0], archive, validator_hotkey=key("honest1").hotkey)
    response = client.post(f"/v1/validators/work_units/{ids[0]}/claim", json=forged)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"
    tampered = envelope(key("honest1"), "claim", ids[0], archive, payload={"a": 1})
    tampered["payload"] = {"a": 2}
    assert client.post(f"/v1/validators/work_units/{ids[0]}/claim", json=tampered).status_code == 401
    other_unit = envelope(key("honest1"), "claim", ids[1], archive)
    moved = client.post(f"/v1/validators/work_units/{ids[0]}/claim", json=other_unit)
    assert moved.status_code == 400 and moved.json()["error"]["code"] == "unit_mismatch"
    stale = key("honest1").sign(
        slug="prism",
        kind="claim",
        work_unit_id=ids[0],
        archive_sha256=archive,
        payload={},
        timestamp=int(time.time()) - 3600,
    )
    assert client.post(f"/v1/validators/work_units/{ids[0]}/claim", json=stale.to_json()).json()["error"]["code"] == (
        "stale_request"
    )
    other_challenge = key("honest1").sign(
        slug="x", kind="claim", work_unit_id=ids[0], archive_sha256=archive, payload={}
    )
    assert client.post(f"/v1/validators/work_units/{ids[0]}/claim", json=other_challenge.to_json()).status_code == 401
    assert client.post(f"/v1/validators/work_units/{ids[0]}/claim", content=b"not json").status_code == 400


def test_one_validator_evaluates_a_submission_once(
    client: TestClient, units: tuple[str, list[str], str], db: sessionmaker[Session]
) -> None:
    _, ids, archive = units
    honest = key("honest1")
    assert claim(client, honest, ids[0], archive).status_code == 200
    second = claim(client, honest, ids[1], archive)
    assert second.status_code == 403 and second.json()["error"]["code"] == "not_independent"
    with db() as session:
        unit = session.get(ValidatorUnit, ids[1])
        assert unit is not None and unit.status == "expired"  # withdrawn: a replacement will open
    listed = [u["submission_id"] for u in client.get("/internal/v1/work_units", headers=AUTH).json()["work_units"]]
    assert listed == [ids[0]]


def test_a_result_that_does_not_match_its_artifacts_is_refused(
    client: TestClient, units: tuple[str, list[str], str]
) -> None:
    _, ids, archive = units
    honest = key("honest1")
    claim(client, honest, ids[0], archive)
    result = ok_result()
    result["figures"]["train"]["weights_sha256"] = "0" * 64
    response = client.post(
        f"/v1/validators/work_units/{ids[0]}/result", json=envelope(honest, "result", ids[0], archive, result)
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "artifact_mismatch"


def test_fold_answers_platform(client: TestClient, units: tuple[str, list[str], str]) -> None:
    _, ids, _archive = units
    body = {"job_id": ids[1], "task_id": "t", "reason": "work_unit_max_attempts_exhausted"}
    assert client.post("/internal/v1/work_units/fold", json=body).status_code == 401
    first = client.post("/internal/v1/work_units/fold", json=body, headers=AUTH)
    assert first.status_code == 200 and first.json()["folded"] is True
    assert client.post("/internal/v1/work_units/fold", json=body, headers=AUTH).json()["folded"] is False
    unknown = client.post("/internal/v1/work_units/fold", json={**body, "job_id": "nope"}, headers=AUTH)
    assert unknown.status_code == 200 and unknown.json()["folded"] is False


def test_embedded_mode_takes_no_validator_results(client: TestClient, db: sessionmaker[Session]) -> None:
    sid = submit(client, HOTKEYS["bob"], project_zip(example_files()))
    with db() as session, session.begin():
        submission = session.get(Submission, sid)
        assert submission is not None
        (unit,) = unit_store.open_units(
            session,
            submission_id=sid,
            hotkey=submission.hotkey,
            archive_sha256=submission.archive_sha256,
            job=JOB,
            runtime_config_version=None,
            count=1,
        )
        unit_id, archive = unit.id, submission.archive_sha256
    response = claim(client, key("honest1"), unit_id, archive)
    assert response.status_code == 403 and response.json()["error"]["code"] == "validators_disabled"
    assert json.loads(client.get("/internal/v1/validators", headers=AUTH).text) == {"validators": []}


def test_the_holder_renews_its_lease_and_nobody_else_can(
    client: TestClient, units: tuple[str, list[str], str], db: sessionmaker[Session]
) -> None:
    _, ids, archive = units
    honest = key("honest1")
    answer = claim(client, honest, ids[0], archive).json()
    assert answer["lease_seconds"] == 600 and answer["progress_path"].endswith(f"{ids[0]}/progress")
    with db() as session, session.begin():
        unit = session.get(ValidatorUnit, ids[0])
        assert unit is not None
        unit.lease_expires_at = unit_store.utcnow() + timedelta(seconds=5)
    renewed = client.post(answer["progress_path"], json=envelope(honest, "progress", ids[0], archive))
    assert renewed.status_code == 200
    with db() as session:
        unit = session.get(ValidatorUnit, ids[0])
        assert unit is not None and unit.lease_expires_at is not None
        assert unit.lease_expires_at > unit_store.utcnow() + timedelta(seconds=500)
    other = client.post(answer["progress_path"], json=envelope(key("honest2"), "progress", ids[0], archive))
    assert other.status_code == 403 and other.json()["error"]["code"] == "unit_not_assigned"
    with db() as session, session.begin():
        unit = session.get(ValidatorUnit, ids[0])
        assert unit is not None
        unit.lease_expires_at = unit_store.utcnow() - timedelta(seconds=1)
    late = client.post(answer["progress_path"], json=envelope(honest, "progress", ids[0], archive))
    assert late.status_code == 410 and late.json()["error"]["code"] == "lease_expired"
