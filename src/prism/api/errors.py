"""The one table that maps PRISM's errors to HTTP, and the error body every route returns.

Body: {"error": {"code": "<machine code>", "message": "<what is wrong>"}, "detail": "<the message>"}.

`detail` repeats the message in the field Platform's own errors use (FastAPI's `{"detail": ...}`),
so a miner's client reads one field whichever side answered; `error.code` says it was PRISM.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from prism.errors import ConfigError, PrismError
from prism.store.db import DatabaseUnavailable, is_transient
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
    body = {"error": {"code": code, "message": message}, "detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


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

    install_database_errors(app)


# How long a client should wait before retrying after the database failed it.
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable() -> JSONResponse:
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable or busy; nothing was changed, retry later",
        {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def install_database_errors(app: FastAPI) -> None:
    """Every database failure gets a typed answer: 503 + Retry-After when it is transient (down,
    hung, locked), 400 when the database refused the value itself; never a text/plain 500."""

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(_request: Request, _exc: DatabaseUnavailable) -> JSONResponse:
        return database_unavailable()

    @app.exception_handler(sa_exc.SQLAlchemyError)
    async def _database(_request: Request, exc: sa_exc.SQLAlchemyError) -> JSONResponse:
        if is_transient(exc):
            log.warning("database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__)
            return database_unavailable()
        if isinstance(exc, sa_exc.DataError):
            return error_response(400, "invalid_value", "a value in the request cannot be stored")
        log.error("database error reached the API: %s", type(exc).__name__)
        return error_response(500, "internal_error", "internal error")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error reached the API: %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", "internal error")
