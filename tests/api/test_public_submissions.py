"""The signed public route, with real sr25519 keys generated in the test."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sr25519
from fastapi.testclient import TestClient

from prism.api.app import create_app
from prism.api.signatures import canonical_message, ss58_encode
from prism.config import Settings
from prism.store.db import make_engine
from prism.store.migrate import upgrade


@pytest.fixture
def public_client(settings: Settings) -> Iterator[TestClient]:
    enabled = settings.model_copy(update={"public_submissions_enabled": True, "signature_ttl_seconds": 60})
    engine = make_engine(enabled.resolved_database_url)
    upgrade(engine)
    with TestClient(create_app(enabled, engine=engine)) as client:
        yield client


class Miner:
    def __init__(self) -> None:
        self.keypair = sr25519.pair_from_seed(os.urandom(32))
        self.hotkey = ss58_encode(self.keypair[0])

    def headers(
        self,
        body: bytes,
        *,
        nonce: str,
        timestamp: float | None = None,
        slug: str = "prism",
        wrap: bool = False,
        signer: Miner | None = None,
    ) -> dict[str, str]:
        stamp = str(int(timestamp if timestamp is not None else time.time()))
        message = canonical_message(challenge_slug=slug, hotkey=self.hotkey, nonce=nonce, timestamp=stamp, body=body)
        if wrap:
            message = b"<Bytes>" + message + b"</Bytes>"
        signature = sr25519.sign((signer or self).keypair, message)
        return {
            "X-Hotkey": self.hotkey,
            "X-Signature": "0x" + signature.hex(),
            "X-Nonce": nonce,
            "X-Timestamp": stamp,
            "X-Submission-Filename": "project.zip",
        }


def test_disabled_by_default(client: TestClient, model_zip: bytes) -> None:
    response = client.post("/v1/submissions", headers=Miner().headers(model_zip, nonce="n"), content=model_zip)
    assert response.status_code == 403 and response.json()["error"]["code"] == "public_submissions_disabled"


@pytest.mark.parametrize("wrap", [False, True])
def test_valid_signature(public_client: TestClient, model_zip: bytes, wrap: bool) -> None:
    miner = Miner()
    response = public_client.post(
        "/v1/submissions", headers=miner.headers(model_zip, nonce="n-1", wrap=wrap), content=model_zip
    )
    assert response.status_code == 201, response.text
    assert public_client.get(f"/v1/submissions/{response.json()['id']}").json()["hotkey"] == miner.hotkey


def test_wrong_key(public_client: TestClient, model_zip: bytes) -> None:
    headers = Miner().headers(model_zip, nonce="n", signer=Miner())
    response = public_client.post("/v1/submissions", headers=headers, content=model_zip)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"


def test_signature_binds_the_body_and_slug(public_client: TestClient, model_zip: bytes) -> None:
    miner = Miner()
    moved = public_client.post("/v1/submissions", headers=miner.headers(model_zip, nonce="a"), content=model_zip + b"x")
    other_slug = public_client.post(
        "/v1/submissions", headers=miner.headers(model_zip, nonce="b", slug="other"), content=model_zip
    )
    assert moved.status_code == 401 and other_slug.status_code == 401


@pytest.mark.parametrize("skew", [-3600, 3600])
def test_stale_or_future_timestamp(public_client: TestClient, model_zip: bytes, skew: int) -> None:
    headers = Miner().headers(model_zip, nonce="n", timestamp=time.time() + skew)
    response = public_client.post("/v1/submissions", headers=headers, content=model_zip)
    assert response.status_code == 401 and response.json()["error"]["code"] == "stale_request"


def test_replayed_nonce(public_client: TestClient, model_zip: bytes, tmp_path: Path) -> None:
    miner = Miner()
    first = public_client.post("/v1/submissions", headers=miner.headers(model_zip, nonce="once"), content=model_zip)
    assert first.status_code == 201
    replay = public_client.post("/v1/submissions", headers=miner.headers(model_zip, nonce="once"), content=model_zip)
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "nonce_replayed"


def test_missing_signature_headers(public_client: TestClient, model_zip: bytes) -> None:
    headers = Miner().headers(model_zip, nonce="n")
    del headers["X-Signature"]
    response = public_client.post("/v1/submissions", headers=headers, content=model_zip)
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_signature"


def test_bridge_headers_mean_nothing_here(public_client: TestClient, model_zip: bytes) -> None:
    """A verified-hotkey header on the public route is ignored: only the signature identifies."""
    headers = {"X-Base-Verified-Hotkey": Miner().hotkey, "X-Submission-Filename": "p.zip"}
    response = public_client.post("/v1/submissions", headers=headers, content=model_zip)
    assert response.status_code == 401
