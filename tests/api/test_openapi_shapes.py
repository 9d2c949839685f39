"""The published schema says what the service does: error shape, errors, security, typed answers."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from pydantic import BaseModel

from prism.api.app import create_app
from prism.api.openapi_docs import (
    Architectures,
    CurrentEpoch,
    Curve,
    FullSubmissionView,
    Health,
    Leaderboard,
    ReviewQueue,
    SubmissionAccepted,
    SubmissionView,
    Version,
    Weights,
)
from prism.config import Settings
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
ERROR = {"$ref": "#/components/schemas/Error"}


def _schema() -> dict:  # type: ignore[type-arg]
    return create_app(Settings(database_url="sqlite://")).openapi()


def test_errors_security_and_no_fastapi_detail_shape() -> None:
    schema = _schema()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert {"PlatformToken", "OperatorToken", "HotkeySignature"} <= schema["components"]["securitySchemes"].keys()
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            for code, answer in responses.items():
                if code.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == ERROR, (path, method, code)
            if op.get("parameters") or "requestBody" in op:
                assert "422" in responses, (path, method)
            if any(p["in"] == "path" for p in op.get("parameters", [])):
                assert "404" in responses, (path, method)
            if path.startswith("/internal/"):
                assert op["security"] in ([{"PlatformToken": []}], [{"OperatorToken": []}]), path
                assert {"401", "503"} <= responses.keys(), path
    bridge = schema["paths"]["/internal/v1/bridge/submissions"]["post"]["responses"]
    assert {"400", "401", "409", "413", "422", "503"} <= bridge.keys()
    assert "403" in schema["paths"]["/v1/submissions"]["post"]["responses"]
    assert "409" in schema["paths"]["/internal/v1/review-queue/{submission_id}/resolve"]["post"]["responses"]


def _check(model: type[BaseModel], body: object) -> None:
    model.model_validate(body)  # extra="forbid": a field the schema does not name fails here


def test_real_answers_match_the_documented_models(client: TestClient, model_zip: bytes) -> None:
    headers = {**AUTH, "X-Base-Verified-Hotkey": HOTKEY, "X-Submission-Filename": "m.zip"}
    stored = client.post("/internal/v1/bridge/submissions", headers=headers, content=model_zip)
    assert stored.status_code == 201
    _check(SubmissionAccepted, stored.json())
    sid = stored.json()["id"]
    _check(SubmissionView, client.get(f"/v1/submissions/{sid}").json())
    _check(Curve, client.get(f"/v1/submissions/{sid}/curve").json())
    _check(FullSubmissionView, client.get(f"/internal/v1/submissions/{sid}", headers=AUTH).json())
    _check(Health, client.get("/health").json())
    _check(Version, client.get("/version").json())
    _check(Leaderboard, client.get("/v1/leaderboard").json())
    _check(Architectures, client.get("/v1/architectures").json())
    _check(CurrentEpoch, client.get("/v1/epochs/current").json())
    _check(Weights, client.get("/internal/v1/get_weights", headers=AUTH).json())
    _check(ReviewQueue, client.get("/internal/v1/review-queue", headers=AUTH).json())


def test_a_422_has_the_documented_shape(client: TestClient) -> None:
    answer = client.get("/v1/leaderboard?epoch=-1")
    assert answer.status_code == 422
    body = answer.json()
    assert set(body) == {"error", "detail"}
    assert body["error"]["code"] == "invalid_request" and "epoch" in body["error"]["message"]


def test_docs_load_nothing_from_outside(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith(("/docs/static/", "data:")) for s in sources), sources
    assert "validatorUrl" in page.text and "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        served = client.get(f"/docs/static/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000
    assert client.get("/docs/static/..%2Fconsole.css").status_code == 404
    assert client.get("/redoc").status_code == 404
