from __future__ import annotations

import typer


def worker() -> None:
    """Run background work."""
    raise typer.Exit(1)
