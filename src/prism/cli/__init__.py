"""The `prism` command. Each concern registers its sub-commands from its own module here."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="PRISM: evaluate hostile model submissions.")


def main() -> None:
    from prism.errors import PrismError

    try:
        app()
    except PrismError as exc:
        # A clear line for operators (bad settings, invalid runtime config), not a traceback.
        typer.echo(f"prism: {exc}", err=True)
        raise SystemExit(2) from exc


def _register() -> None:
    # Imported for their side effect of adding commands to `app`; keep in alphabetical order.
    from prism.cli import (
        data,  # noqa: F401
        evaluate,  # noqa: F401
        ops,  # noqa: F401
        review,  # noqa: F401
        sandbox,  # noqa: F401
        server,  # noqa: F401
        worker,  # noqa: F401
    )


_register()
