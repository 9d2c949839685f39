"""The FastAPI application: routers, error table, and the state they share."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

import prism
from prism.api import (
    challenge,
    console,
    edge,
    errors,
    metrics,
    openapi_docs,
    operator,
    platform_routes,
    public_pages,
    reads,
    runtime_config_routes,
    submissions,
    work_units,
)
from prism.api.proxy_guard import ProxyGuard
from prism.api.state import AppState
from prism.api.weights import WeightsCache
from prism.config import Settings, get_settings
from prism.store.db import make_engine, make_session_factory


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(
        settings.resolved_database_url,
        connect_timeout=settings.db_connect_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds,
    )
    sessions = make_session_factory(engine)
    app = FastAPI(
        title="PRISM",
        version=prism.__version__,
        description="Evaluation service for a Bittensor subnet challenge. Every submission is treated as hostile.",
        docs_url=None,  # served by openapi_docs from vendored assets, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    weights = WeightsCache(settings, sessions)
    app.state.prism = AppState(settings, engine, sessions, weights)
    errors.install(app)
    edge.install(
        app, request_timeout=settings.request_timeout_seconds, body_read_timeout=settings.body_read_timeout_seconds
    )
    # The weights snapshot is computed in the background from the start, never by a reader.
    weights.start()
    app.router.on_shutdown.append(weights.stop)
    app.include_router(reads.router)
    app.include_router(submissions.router)
    app.include_router(metrics.router)
    app.include_router(operator.router)
    app.include_router(console.router)
    app.include_router(challenge.router)
    app.include_router(runtime_config_routes.router)
    app.include_router(public_pages.router)
    openapi_docs.install(app)
    app.include_router(platform_routes.router)
    app.include_router(work_units.router)
    # Outermost: operator surfaces closed to Platform's public proxy, login throttle, no compression.
    app.add_middleware(ProxyGuard, settings=settings)
    return app
