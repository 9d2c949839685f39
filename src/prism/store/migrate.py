"""Run Alembic migrations from code: `prism db upgrade` and the tests use the same path."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from prism.store.db import backoff, is_transient

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def upgrade_when_ready(
    engine: Engine,
    revision: str = "head",
    *,
    budget_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """`upgrade`, waiting with back-off while the database is unreachable or locked.

    A worker that restarts during a database outage waits here instead of exiting. A failure
    that is not transient (a broken migration) is raised at once. `budget_seconds=None` waits
    for as long as it takes.
    """
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    attempt = 0
    while True:
        try:
            upgrade(engine, revision)
            return
        except SQLAlchemyError as exc:
            if not is_transient(exc) or (deadline is not None and time.monotonic() >= deadline):
                raise
            delay = backoff(attempt, base=0.5, cap=30.0)
            log.warning("database not ready for migration (%s); retrying in %.1fs", type(exc).__name__, delay)
            engine.dispose()
            sleep(delay)
            attempt += 1
