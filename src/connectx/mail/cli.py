from __future__ import annotations

import typer

app = typer.Typer(help="The mail outbox.", no_args_is_help=True)
