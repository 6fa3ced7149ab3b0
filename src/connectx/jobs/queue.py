"""Enqueue durable work: the job row commits with the business change that caused it; the wake-up
goes out only after commit. Losing the wake-up is harmless: the reconciler finds the row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.db.session import after_commit
from connectx.kit import clock
from connectx.models.job import Job

Waker = Callable[[int], Awaitable[None]]
_waker: Waker | None = None


def set_waker(waker: Waker | None) -> None:
    """The runtime installs how a committed job id reaches a worker (a broker message)."""
    global _waker
    _waker = waker


async def enqueue(
    db: AsyncSession,
    name: str,
    args: dict[str, Any] | None = None,
    *,
    run_after: datetime | None = None,
    max_attempts: int = 8,
) -> Job:
    now = clock.now()
    job = Job(
        name=name,
        args=args or {},
        status="pending",
        attempts=0,
        max_attempts=max_attempts,
        run_after=run_after or now,
        created_at=now,
    )
    db.add(job)
    await db.flush()
    job_id = job.id

    async def wake() -> None:
        if _waker is not None and (run_after is None or run_after <= clock.now()):
            await _waker(job_id)

    after_commit(db, wake)
    return job
