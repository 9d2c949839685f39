"""The `prism` command. Each concern registers its sub-commands from its own module here.

`prism --install-completion` installs shell completion (bash, zsh, fish, PowerShell);
`prism --show-completion` prints the script instead.
"""

from __future__ import annotations

import typer

import prism

app = typer.Typer(no_args_is_help=True, add_completion=True, help="PRISM: evaluate hostile model submissions.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"prism {prism.__version__} (api {prism.API_VERSION}, challenge {prism.CHALLENGE_VERSION})")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print PRISM's version and exit."
    ),
) -> None:
    """PRISM: evaluate hostile model submissions."""


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
