"""`prism serve` and `prism db upgrade`."""

from __future__ import annotations

from typing import Any

import typer

from prism.cli import app
from prism.config import Settings, get_settings, platform_container
from prism.config_check import configuration_problems
from prism.errors import ConfigError
from prism.logs import configure_logging
from prism.store.db import make_engine
from prism.store.migrate import upgrade, upgrade_when_ready

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Alembic revision to upgrade to.")) -> None:
    """Create or migrate the database named by PRISM_DATABASE_URL (SQLite under PRISM_DATA_DIR by default)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine, revision)
    typer.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")


def official_start_problem(settings: Settings) -> str | None:
    """Why this API must not start in official operation (serving Platform or placing jobs
    through its broker), or None: operators need their own token there."""
    if settings.sandbox_backend != "broker" and not platform_container():
        return None
    return settings.official_token_problem()


def uvicorn_limits(settings: Settings) -> dict[str, Any]:
    """Slow or idle clients cannot hold the server: beyond `http_limit_concurrency` open
    connections and requests uvicorn answers 503 (per server process); idle keep-alive
    connections close after `http_keep_alive_seconds`; a body that stalls ends in 408 (see
    api/edge.py). The HTTP parser is h11 whatever else is installed: uvicorn's httptools parser
    has no limit on the size of the request line and headers."""
    return {
        "http": "h11",
        "loop": "auto",  # uvloop (a dependency): a cheaper event loop, nothing else changes
        "limit_concurrency": settings.http_limit_concurrency,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "backlog": 2048,
        "h11_max_incomplete_event_size": 64 * 1024,  # request line + headers
        "timeout_graceful_shutdown": 30,
    }


def served_app() -> Any:
    """The app of one server process when `prism serve` runs several (uvicorn imports this by
    name in each new process): its own engine, session pool and weights refresher."""
    from prism.api.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def run_api(*, host: str | None, port: int | None, with_worker: bool, workers: int | None = None) -> None:
    """Migrate, then serve the API; `with_worker` also runs a worker thread in this process.

    `workers` (default `http_workers`) > 1 runs that many server processes on one socket, so
    intake uses more than one core; each keeps its own weights snapshot from the database."""
    import uvicorn

    from prism.api.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    problems = configuration_problems()
    if problems:  # found at start, not by the first request that needs the secret
        raise ConfigError("; ".join(problems))
    problem = official_start_problem(settings)
    if problem is not None:
        raise ConfigError(f"refusing to start in official operation: {problem}")
    host, port = settings.bind_address(host, port)
    engine = make_engine(
        settings.resolved_database_url,
        connect_timeout=settings.db_connect_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds,
    )
    upgrade_when_ready(engine)
    stop = None
    if with_worker:
        from prism.cli.worker import start_worker_thread

        stop = start_worker_thread(settings)
        typer.echo(f"PRISM on http://{host}:{port} (data in {settings.data_dir.resolve()}); worker running")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        **uvicorn_limits(settings),
        "log_config": None,  # uvicorn's own lines go through our formatter (JSON with PRISM_LOG_FORMAT=json)
    }
    processes = settings.http_workers if workers is None else workers
    try:
        if processes > 1:
            engine.dispose()  # each server process opens its own connections
            uvicorn.run("prism.cli.server:served_app", factory=True, workers=processes, **options)
        else:
            uvicorn.run(create_app(settings, engine=engine), **options)
    finally:
        if stop is not None:
            stop.set()


@app.command()
def serve(
    host: str | None = typer.Option(
        None, help="Interface to bind [default: PRISM_HOST; 0.0.0.0 in Platform's container; else 127.0.0.1]."
    ),
    port: int | None = typer.Option(
        None, help="TCP port [default: PRISM_PORT; 8080 in Platform's container; else 8000]."
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Server processes sharing the port [default: PRISM_HTTP_WORKERS, 1]."
    ),
) -> None:
    """Run the HTTP API (migrating the database first)."""
    run_api(host=host, port=port, with_worker=False, workers=workers)


@app.command("up")
def up(
    host: str | None = typer.Option(
        None, help="Interface to bind [default: PRISM_HOST; 0.0.0.0 in Platform's container; else 127.0.0.1]."
    ),
    port: int | None = typer.Option(
        None, help="TCP port [default: PRISM_PORT; 8080 in Platform's container; else 8000]."
    ),
) -> None:
    """The embedded default: API and worker in one process, on SQLite and the bubblewrap sandbox."""
    run_api(host=host, port=port, with_worker=True, workers=1)
