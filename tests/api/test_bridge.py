"""The Platform bridge: auth matrix, both header generations, bodies, hashes and sizes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from prism.api.app import create_app
from prism.config import Settings
from prism.store.db import make_engine
from prism.store.migrate import upgrade
from tests.api.conftest import MODEL
from tests.conftest import TOKEN

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BRIDGE = "/internal/v1/bridge/submissions"
INTERNAL_ROUTES = [
    ("post", BRIDGE),
    ("get", "/internal/v1/get_weights"),
    ("get", "/internal/v1/submissions/00000000-0000-0000-0000-000000000000"),
]


def _headers(token: str | None = TOKEN, *, generation: str = "base", **extra: str) -> dict[str, str]:
    prefix = "X-Base" if generation == "base" else "X-Platform"
    headers = {
        f"{prefix}-Verified-Hotkey": HOTKEY,
        f"{prefix}-Challenge-Slug": "prism",
        "X-Submission-Filename": "project.zip",
        "Content-Type": "application/zip",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(extra)
    return headers


@pytest.mark.parametrize(("method", "route"), INTERNAL_ROUTES)
@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong-token", 401), ("", 401)])
def test_internal_routes_refuse_bad_tokens(
    client: TestClient, model_zip: bytes, method: str, route: str, token: str | None, status: int
) -> None:
    headers = _headers(token)
    if token == "":
        headers["Authorization"] = "Bearer "
    response = client.request(method, route, headers=headers, content=model_zip if method == "post" else None)
    assert response.status_code == status
    # Platform relays this to the miner: it must not read like a bad signature.
    assert response.json()["error"]["code"] == "platform_token_rejected"


@pytest.mark.parametrize(("method", "route"), INTERNAL_ROUTES)
def test_internal_routes_accept_the_right_token(client: TestClient, model_zip: bytes, method: str, route: str) -> None:
    response = client.request(method, route, headers=_headers(), content=model_zip if method == "post" else None)
    assert response.status_code in (200, 201, 404)  # 404: the submission id in the route does not exist
    if route.endswith("get_weights"):
        assert response.status_code == 200


@pytest.mark.parametrize(("method", "route"), INTERNAL_ROUTES)
@pytest.mark.parametrize("token", [None, TOKEN])
def test_internal_routes_fail_closed_without_a_configured_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, route: str, token: str | None
) -> None:
    for name in (
        "PRISM_SHARED_TOKEN",
        "CHALLENGE_SHARED_TOKEN",
        "PRISM_SHARED_TOKEN_FILE",
        "CHALLENGE_SHARED_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}")
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    with TestClient(create_app(settings, engine=engine)) as client:
        response = client.request(method, route, headers=_headers(token), content=b"x" if method == "post" else None)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "auth_not_configured"


@pytest.mark.parametrize("generation", ["base", "platform"])
def test_both_header_generations_store_a_pending_submission(
    client: TestClient, model_zip: bytes, generation: str
) -> None:
    response = client.post(BRIDGE, headers=_headers(generation=generation), content=model_zip)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["created"] is True
    public = client.get(f"/v1/submissions/{body['id']}").json()
    assert public["status"] == "pending" and public["hotkey"] == HOTKEY and public["queue_position"] == 1
    assert "stages" not in public and "reason" not in public


def test_same_bytes_twice_is_idempotent(client: TestClient, model_zip: bytes) -> None:
    first = client.post(BRIDGE, headers=_headers(), content=model_zip)
    second = client.post(BRIDGE, headers=_headers(), content=model_zip)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"] and second.json()["created"] is False


def test_json_body(client: TestClient, model_zip: bytes) -> None:
    body = {"filename": "p.zip", "code": base64.b64encode(model_zip).decode(), "metadata": {"note": "hi"}}
    response = client.post(BRIDGE, headers=_headers(**{"Content-Type": "application/json"}), content=json.dumps(body))
    assert response.status_code == 201, response.text


def test_single_python_file(client: TestClient) -> None:
    headers = _headers(**{"X-Submission-Filename": "model.py", "Content-Type": "text/x-python"})
    response = client.post(BRIDGE, headers=headers, content=MODEL.encode())
    assert response.status_code == 201 and response.json()["status"] == "pending"


def test_identity_ignored_without_auth(client: TestClient, model_zip: bytes) -> None:
    """The hotkey header means nothing on an unauthenticated request; nothing is stored."""
    response = client.post(BRIDGE, headers=_headers(None), content=model_zip)
    assert response.status_code == 401
    metrics = client.get("/metrics").text
    assert 'prism_submissions{state="pending"} 0.0' in metrics


def test_wrong_slug(client: TestClient, model_zip: bytes) -> None:
    response = client.post(BRIDGE, headers=_headers(**{"X-Base-Challenge-Slug": "other"}), content=model_zip)
    assert response.status_code == 400 and response.json()["error"]["code"] == "wrong_challenge"


def test_request_hash(client: TestClient, model_zip: bytes) -> None:
    good = hashlib.sha256(model_zip).hexdigest()
    ok = client.post(BRIDGE, headers=_headers(**{"X-Base-Request-Hash": good}), content=model_zip)
    assert ok.status_code == 201
    bad = client.post(BRIDGE, headers=_headers(**{"X-Base-Request-Hash": "0" * 64}), content=model_zip + b" ")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "request_hash_mismatch"


def test_oversized_body(client: TestClient, settings: Settings) -> None:
    too_big = b"\0" * (settings.max_body_bytes + 1)
    response = client.post(BRIDGE, headers=_headers(), content=too_big)
    assert response.status_code == 413 and "max_body_bytes" in response.json()["error"]["message"]


def test_oversized_streamed_body_without_length(client: TestClient, settings: Settings) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"\0" * 65536

    response = client.post(BRIDGE, headers=_headers(), content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("headers", "content", "status", "code"),
    [
        ({"Content-Type": "application/json"}, b"{not json", 400, "invalid_json"),
        ({"Content-Type": "application/json"}, b"[1, 2]", 422, "invalid_request"),
        (
            {"Content-Type": "application/json"},
            json.dumps({"filename": "p.zip", "code": "!!!"}).encode(),
            400,
            "invalid_base64",
        ),
        (
            {"Content-Type": "application/json"},
            json.dumps({"filename": "../p.zip", "code": "UEs="}).encode(),
            400,
            "invalid_filename",
        ),
        ({"Content-Type": "application/json"}, json.dumps({"filename": "p.zip"}).encode(), 422, "invalid_request"),
        ({"X-Submission-Filename": "evil.exe"}, b"MZ", 400, "invalid_filename"),
        ({"X-Submission-Filename": "a/b.zip"}, b"PK", 400, "invalid_filename"),
        ({"X-Base-Verified-Hotkey": "not-a-hotkey"}, b"PK", 400, "invalid_hotkey"),
    ],
)
def test_malformed_bodies(client: TestClient, headers: dict[str, str], content: bytes, status: int, code: str) -> None:
    response = client.post(BRIDGE, headers=_headers(**headers), content=content)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_raw_upload_without_filename_is_named_by_its_bytes(client: TestClient, model_zip: bytes) -> None:
    # Platform forwards X-Submission-Filename only when the miner sent it.
    headers = _headers()
    del headers["X-Submission-Filename"]
    response = client.post(BRIDGE, headers=headers, content=model_zip)
    assert response.status_code == 201, response.text
    single = client.post(
        BRIDGE,
        headers={**headers, "Content-Type": "application/octet-stream"},
        content=b"import torch\n",
    )
    assert single.status_code == 201, single.text


def test_hostile_archive_is_stored_as_rejected_with_evidence(client: TestClient) -> None:
    response = client.post(BRIDGE, headers=_headers(), content=b"PK\x03\x04 this is not a zip")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "rejected" and body["reason_code"].startswith("archive.")
    full = client.get(f"/internal/v1/submissions/{body['id']}", headers=_headers()).json()
    assert full["stages"][0]["stage"] == "intake" and full["stages"][0]["evidence"]
    assert full["stages"][0]["evidence"][0]["rule_id"].startswith("archive.")


def test_unknown_submission_is_404(client: TestClient) -> None:
    response = client.get("/v1/submissions/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
