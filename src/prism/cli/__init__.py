"""The `prism` command. Each concern registers its sub-commands from its own module here."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="PRISM: evaluate hostile model submissions.")


def main() -> None:
    app()


def _register() -> None:
    # Imported for their side effect of adding commands to `app`; keep in alphabetical order.
    from prism.cli import data  # noqa: F401
    from prism.cli import evaluate  # noqa: F401
    from prism.cli import ops  # noqa: F401
    from prism.cli import review  # noqa: F401
    from prism.cli import sandbox  # noqa: F401
    from prism.cli import server  # noqa: F401
    from prism.cli import worker  # noqa: F401


_register()
