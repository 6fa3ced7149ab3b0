from __future__ import annotations

import typer

admin_app = typer.Typer(help="Administration.", no_args_is_help=True)


def demo() -> None:
    """Seed a demo workspace."""
    raise typer.Exit(1)
