"""`prism serve` and `prism db upgrade`."""

from __future__ import annotations

import typer

from prism.cli import app
from prism.config import get_settings
from prism.config_check import configuration_problems
from prism.errors import ConfigError
from prism.logs import configure_logging
from prism.store.db import make_engine
from prism.store.migrate import upgrade

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


def run_api(*, host: str, port: int, with_worker: bool) -> None:
    """Migrate, then serve the API; `with_worker` also runs a worker thread in this process."""
    import uvicorn

    from prism.api.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    problems = configuration_problems()
    if problems:  # found at start, not by the first request that needs the secret
        raise ConfigError("; ".join(problems))
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    stop = None
    if with_worker:
        from prism.cli.worker import start_worker_thread

        stop = start_worker_thread(settings)
        typer.echo(f"PRISM on http://{host}:{port} (data in {settings.data_dir.resolve()}); worker running")
    try:
        uvicorn.run(
            create_app(settings, engine=engine),
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            log_config=None,  # uvicorn's own lines go through our formatter (JSON with PRISM_LOG_FORMAT=json)
        )
    finally:
        if stop is not None:
            stop.set()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """Run the HTTP API (migrating the database first)."""
    run_api(host=host, port=port, with_worker=False)


@app.command("up")
def up(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """The embedded default: API and worker in one process, on SQLite and the bubblewrap sandbox."""
    run_api(host=host, port=port, with_worker=True)
