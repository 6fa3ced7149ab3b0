"""``connectx webhooks``: the operator's view of stored webhook events (never their content)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import typer

from connectx.audit import service as audit
from connectx.db.engine import dispose_engines
from connectx.db.session import unit_of_work
from connectx.intake import repository as repo

app = typer.Typer(help="Stored WhatsApp webhook events.", no_args_is_help=True)

T = TypeVar("T")


def _run(work: Awaitable[T]) -> T:
    async def main() -> T:
        try:
            return await work
        finally:
            await dispose_engines()

    return asyncio.run(main())


@app.command()
def status() -> None:
    """How many events are pending, processed, malformed or failed."""

    async def work() -> dict[str, int]:
        async with unit_of_work() as db:
            return await repo.count_by_status(db)

    counts = _run(work())
    for name in ("pending", "processed", "malformed", "failed"):
        typer.echo(f"{name:10} {counts.get(name, 0)}")


@app.command()
def flagged(limit: int = typer.Option(20, min=1, max=1000, help="How many, newest first.")) -> None:
    """Events kept for inspection: malformed, failed, or with updates for unknown numbers."""

    async def work() -> list[str]:
        async with unit_of_work() as db:
            return [
                f"{e.id:>8}  {e.received_at:%Y-%m-%d %H:%M:%S}  {e.status:9}  {e.body_size:>8} B"
                f"  items={e.items} unrouted={e.unrouted} ignored={e.ignored}"
                f" attempts={e.attempts}{'  error=' + e.last_error if e.last_error else ''}"
                for e in await repo.flagged(db, limit)
            ]

    lines = _run(work())
    typer.echo("\n".join(lines) if lines else "nothing flagged")


@app.command()
def retry(
    ids: list[int] = typer.Argument(None, help="Event ids to process again."),
    failed: bool = typer.Option(False, "--failed", help="Every event parked as failed."),
) -> None:
    """Queue events for processing again (after a fix, or once their number is connected)."""
    if not ids and not failed:
        typer.echo("give event ids, or --failed", err=True)
        raise typer.Exit(2)

    async def work() -> list[int]:
        async with unit_of_work() as db:
            done = await repo.requeue(db, list(ids or []), all_failed=failed)
            if done:
                await audit.record(
                    db, actor="operator", action="webhook_events.requeued", data={"events": done}
                )
            return done

    done = _run(work())
    typer.echo(f"queued again: {', '.join(map(str, done)) if done else 'none'}")
