"""``connectx admin suspend-workspace`` and ``connectx admin lift-suspension`` (operator)."""

from __future__ import annotations

import asyncio

import typer


def _run_or_fail(work):  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import SQLAlchemyError

    from connectx.db import errors
    from connectx.db.engine import dispose_engines
    from connectx.kit.errors import DomainError

    async def main():  # type: ignore[no-untyped-def]
        try:
            return await work()
        finally:
            await dispose_engines()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        typer.secho(f"error: {exc.detail}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        typer.secho(f"error: {errors.describe(exc)}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def suspend_workspace(
    workspace_id: int = typer.Argument(..., help="The workspace's id."),
    reason: str = typer.Option(..., "--reason", help="Which terms were broken, and how."),
) -> None:
    """Suspend a workspace for a terms violation: it stops sending, its inbound messages are
    kept but not processed, and its owners are e-mailed the reason."""
    from connectx.db.session import unit_of_work
    from connectx.security import suspension

    async def work() -> None:
        async with unit_of_work() as db:
            await suspension.suspend(db, workspace_id, reason=reason)

    _run_or_fail(work)
    typer.echo(f"workspace {workspace_id} suspended; its owners were e-mailed the reason")


def lift_suspension(workspace_id: int = typer.Argument(..., help="The workspace's id.")) -> None:
    """Lift a workspace's suspension: sending and intake processing resume."""
    from connectx.db.session import unit_of_work
    from connectx.security import suspension

    async def work() -> None:
        async with unit_of_work() as db:
            await suspension.lift(db, workspace_id)

    _run_or_fail(work)
    typer.echo(f"workspace {workspace_id} is active again")
