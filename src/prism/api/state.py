"""What every request handler may reach: settings, the session factory, the weights cache."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from prism.api.weights import WeightsCache
from prism.config import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    weights: WeightsCache


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.prism
    return state


def session_scope(request: Request) -> Iterator[Session]:
    """A session per request; routes that write commit explicitly."""
    with app_state(request).sessions() as session:
        yield session
