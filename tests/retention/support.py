"""Shared steps of the retention tests: the real CLI, row counts, audit events, idle jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from connectx.cli import app as cli
from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from connectx.models.job import Job


async def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """``connectx …`` in a thread (its own event loop, as from a shell)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def count(model: Any, *where: Any) -> int:
    async with unit_of_work() as db:
        stmt = select(func.count()).select_from(model)
        if where:
            stmt = stmt.where(*where)
        return int((await db.execute(stmt)).scalar_one())


async def events(action: str) -> list[AuditEvent]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list((await db.execute(stmt)).scalars())


async def jobs_settled(timeout: float = 15) -> None:
    """Wait until no job is pending or running (the embedded worker ran them)."""
    for _ in range(int(timeout / 0.05)):
        busy = await count(Job, Job.status.in_(("pending", "running")))
        if busy == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("background jobs did not finish")
