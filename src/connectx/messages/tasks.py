"""Background work of the message store, loaded by every process that runs background work:

- ``messages.status_sweep``: every minute, status callbacks recorded but not applied are
  applied (:mod:`connectx.messages.status_sweep`); a run that stops short enqueues the next.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.jobs import periodic
from connectx.jobs.queue import enqueue
from connectx.jobs.registry import task
from connectx.messages import status_sweep

periodic.every("messages.status_sweep", "messages.status_sweep", interval=timedelta(minutes=1))


@task("messages.status_sweep")
async def sweep_statuses(db: AsyncSession, _args: dict[str, Any]) -> None:
    if await status_sweep.sweep(db):
        await enqueue(db, "messages.status_sweep", {})
