"""The published API description and its viewer.

FastAPI's generated schema says less than the service does: every error comes back as
`{"error": {"code", "message"}, "detail"}` (`detail` repeats the message where Platform's own
errors carry theirs, so a miner meets one shape), the bearer tokens are not
declared, and routes that return plain dicts have no response schema. `customize` fixes the
schema after generation, from the routes themselves (their auth dependencies, path parameters
and methods) and from the response models below; `tests/api/test_openapi_shapes.py` validates
real answers against those models, so the description cannot drift from what is served.

`/docs` serves Swagger UI from vendored files (`static/vendor/swagger/`): no CDN, no online
validator, nothing loaded from outside PRISM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict

from prism.api.errors import ApiError

VENDOR = Path(__file__).parent / "static" / "vendor" / "swagger"
ASSETS = {
    "swagger-ui-bundle.js": (VENDOR / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (VENDOR / "swagger-ui.css", "text/css"),
}

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable, e.g. not_found, invalid_request"},
                "message": {"type": "string", "description": "what is wrong, for a person"},
            },
        },
        "detail": {"type": "string", "description": "the message again, in the field Platform's errors use"},
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "400": "the request is malformed (a header, the filename, the body)",
    "401": "missing or invalid bearer token, signature or console session",
    "403": "the route is disabled on this PRISM",
    "404": "no such resource",
    "409": "a conflict with the current state (replayed nonce, not resolvable, invalid stored config)",
    "413": "the body exceeds its limit (the message names it)",
    "422": "a parameter or body field is invalid (the message names each)",
    "503": "not available now: token not configured, database unavailable, PRISM misconfigured",
}
SECURITY_SCHEMES = {
    "PlatformToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "the shared Platform token (PRISM_SHARED_TOKEN_FILE); the hotkey header is believed only with it",  # noqa: E501
    },
    "OperatorToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "an operator token (PRISM_OPERATOR_TOKEN_FILE or a named one from PRISM_OPERATOR_TOKENS_FILE)",
    },
    "HotkeySignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": "sr25519 signature with X-Hotkey, X-Nonce and X-Timestamp (direct submissions)",
    },
}


# -- response models for routes that build plain dicts ----------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(_Strict):
    status: str
    slug: str | None = None
    version: str | None = None
    problems: list[str] | None = None


class Version(_Strict):
    api_version: str
    challenge_version: str
    sdk_version: str
    prism_version: str
    capabilities: list[str]


class Scores(_Strict):
    final_score: float
    bits_per_byte: float
    heldout_bits_per_byte: float | None
    parameter_count: int | None
    architecture_hash: str | None
    mode: str
    score_eligible: bool


class SubmissionView(_Strict):
    id: str
    hotkey: str
    status: str
    reason_code: str | None
    stage: str | None
    running_stage: str | None
    epoch: int | None
    queue_position: int | None
    created_at: str | None
    updated_at: str | None
    started_at: str | None
    finished_at: str | None
    scores: Scores | None


class Evidence(BaseModel):
    rule_id: str
    path: str
    line: int
    snippet_sha256: str
    explanation: str


class Stage(_Strict):
    stage: str
    outcome: str
    detail: str | None
    evidence: list[Evidence]
    data: dict[str, Any]
    started_at: str | None
    finished_at: str | None


class FullSubmissionView(SubmissionView):
    reason: str | None
    filename: str
    byte_size: int
    code_hash: str | None
    stages: list[Stage]


class SubmissionAccepted(_Strict):
    id: str
    status: str
    reason_code: str | None
    created: bool


class LeaderboardRow(BaseModel):
    rank: int
    hotkey: str
    submission_id: str
    final_score: float
    bits_per_byte: float
    architecture_hash: str | None
    submitted_at: str


class Leaderboard(BaseModel):
    epoch: int
    rows: list[LeaderboardRow]


class Architecture(BaseModel):
    graph_hash: str
    owner_hotkey: str
    owner_submission_id: str
    discovered_at: str
    completed_submissions: int


class Architectures(_Strict):
    architectures: list[Architecture]


class CurrentEpoch(_Strict):
    epoch: int
    epoch_seconds: int
    starts_at: int
    ends_at: int


class Weights(BaseModel):
    challenge_slug: str
    epoch: int
    weights: dict[str, float]
    metadata: dict[str, Any]
    computed_at: str


class LivePoint(_Strict):
    seq: int
    step: int
    steps: int
    tokens: int
    bits_per_byte: float
    mean_bits_per_byte: float
    recorded_at: str


class Curve(_Strict):
    """`points`: the signed report's curve (`final`). `live_points`: advisory, unverified, never scored."""

    submission_id: str
    status: str
    unit: str
    points: list[float]
    final: bool
    live: bool
    live_points: list[LivePoint]


class QueueItem(BaseModel):
    submission_id: str
    hotkey: str
    status: str
    reason_code: str | None
    reason: str | None
    stage: str | None
    updated_at: str


class ReviewQueue(_Strict):
    items: list[QueueItem]


class Resolved(_Strict):
    id: str
    status: str


# (path, method) -> the model of its 200/201 answer.
RESPONSES: dict[tuple[str, str], tuple[str, type[BaseModel]]] = {
    ("/health", "get"): ("200", Health),
    ("/version", "get"): ("200", Version),
    ("/v1/submissions/{submission_id}", "get"): ("200", SubmissionView),
    ("/v1/submissions/{submission_id}/curve", "get"): ("200", Curve),
    ("/internal/v1/submissions/{submission_id}", "get"): ("200", FullSubmissionView),
    ("/internal/v1/review-queue/{submission_id}", "get"): ("200", FullSubmissionView),
    ("/internal/v1/bridge/submissions", "post"): ("201", SubmissionAccepted),
    ("/v1/submissions", "post"): ("201", SubmissionAccepted),
    ("/v1/leaderboard", "get"): ("200", Leaderboard),
    ("/v1/architectures", "get"): ("200", Architectures),
    ("/v1/epochs/current", "get"): ("200", CurrentEpoch),
    ("/internal/v1/get_weights", "get"): ("200", Weights),
    ("/internal/v1/review-queue", "get"): ("200", ReviewQueue),
    ("/internal/v1/review-queue/{submission_id}/resolve", "post"): ("200", Resolved),
}


# Routes that read no database and need no token answer neither 401 nor 503.
_NO_STATE = frozenset({"/health", "/version", "/metrics", "/v1/epochs/current"})


def _errors_of(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    """The error answers an operation can give, from what the schema says about it."""
    tags = set(operation.get("tags", ()))
    params = operation.get("parameters", [])
    codes = {"422"} if params or "requestBody" in operation or method != "get" else set()
    if tags & {"internal", "operator"}:
        codes |= {"401", "503"}
    if path not in _NO_STATE:
        codes.add("503")  # the database is unavailable
    if any(p.get("in") == "path" for p in params):
        codes.add("404")
    if path.endswith("/submissions") and method == "post":
        codes |= {"400", "401", "409", "413", "503"}
        if not path.startswith("/internal"):
            codes.add("403")
    if path.endswith("/resolve"):
        codes.add("409")
    if path.startswith("/internal/v1/runtime-config") and method == "get" and not path.endswith("/history"):
        codes.add("409")
    if path == "/health":
        codes.add("503")
    return sorted(codes)


def _model_schema(schema: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = generated.pop("$defs", {})
    components = schema["components"]["schemas"]
    components.update(definitions)
    components[model.__name__] = generated
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def customize(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            tags = set(operation.get("tags", ()))
            if "internal" in tags:
                operation["security"] = [{"PlatformToken": []}]
            elif "operator" in tags:
                operation["security"] = [{"OperatorToken": []}]
            elif path == "/v1/submissions" and method == "post":
                operation["security"] = [{"HotkeySignature": []}]
            responses = operation.setdefault("responses", {})
            for code in _errors_of(path, method, operation):
                described = responses.get(code, {}).get("description")
                description = described if described and code != "422" else _ERRORS[code]
                responses[code] = {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}
            typed = RESPONSES.get((path, method))
            if typed is not None:
                status, model = typed
                reference = _model_schema(schema, model)
                responses.setdefault(status, {"description": "OK"})
                for code in {status, "200"} & responses.keys():  # a 201 route may answer 200 too
                    responses[code]["content"] = {"application/json": {"schema": reference}}
    return schema


def install(app: FastAPI) -> None:
    """The schema above at /openapi.json, and Swagger UI from local files at /docs."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = customize(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="data:,",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/static/{name}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise ApiError(404, "not_found", f"no docs asset {name!r}")
        path, media_type = ASSETS[name]
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
