"""The one table that maps PRISM's errors to HTTP, and the error body every route returns.

Body: {"error": {"code": "<machine code>", "message": "<what is wrong>"}}.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from prism.errors import ConfigError, PrismError
from prism.store.lifecycle import IllegalTransition

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


# PRISM errors that can reach a route, by type: (status, code). First match wins.
_TABLE: tuple[tuple[type[PrismError], int, str], ...] = (
    (IllegalTransition, 409, "illegal_transition"),
    (ConfigError, 503, "configuration_error"),
)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(PrismError)
    async def _prism_error(_request: Request, exc: PrismError) -> JSONResponse:
        for kind, status, code in _TABLE:
            if isinstance(exc, kind):
                if isinstance(exc, ConfigError):
                    # The detail can name secret files and their paths: the operator's log gets it,
                    # the caller (perhaps unauthenticated) only learns that PRISM is misconfigured.
                    log.error("configuration error answered as 503: %s", exc)
                    return error_response(status, code, "PRISM is misconfigured; the operator's log says how")
                return error_response(status, code, str(exc))
        log.error("unmapped PRISM error reached the API: %s", type(exc).__name__)
        return error_response(500, "internal_error", "internal error")

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "http_error", str(exc.detail))
