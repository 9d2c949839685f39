"""The FastAPI application: routers, error table, and the state they share."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

import prism
from prism.api import console, errors, metrics, operator, reads, submissions, work_units
from prism.api.state import AppState
from prism.api.weights import WeightsCache
from prism.config import Settings, get_settings
from prism.store.db import make_engine, make_session_factory


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    app = FastAPI(
        title="PRISM",
        version=prism.__version__,
        description="Evaluation service for a Bittensor subnet challenge. Every submission is treated as hostile.",
    )
    app.state.settings = settings
    app.state.prism = AppState(settings, engine, sessions, WeightsCache(settings, sessions))
    errors.install(app)
    app.include_router(reads.router)
    app.include_router(submissions.router)
    app.include_router(metrics.router)
    app.include_router(operator.router)
    app.include_router(console.router)
    app.include_router(work_units.router)
    return app
