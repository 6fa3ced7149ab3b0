"""Enqueue durable work: the job row commits with the business change that caused it; the wake-up
goes out only after commit. Losing the wake-up is harmless: the reconciler finds the row."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.db.session import after_commit
from connectx.kit import clock
from connectx.models.job import Job

log = logging.getLogger(__name__)

Waker = Callable[[int], Awaitable[None]]
_waker: Waker | None = None


def set_waker(waker: Waker | None) -> None:
    """The runtime installs how a committed job id reaches a worker (a broker message)."""
    global _waker
    _waker = waker


def current_waker() -> Waker | None:
    return _waker


async def enqueue(
    db: AsyncSession,
    name: str,
    args: dict[str, Any] | None = None,
    *,
    run_after: datetime | None = None,
    max_attempts: int = 8,
) -> Job:
    """Add a job to the caller's transaction; once it commits, wake a worker for it.

    ``args`` are ids only (house rule 6). A job due later (``run_after``) is found by the
    reconciler when it falls due.
    """
    if "." not in name:
        raise ValueError("task names are 'domain.verb'")
    now = clock.now()
    due = run_after is None or run_after <= now
    waker = _waker if due else None
    job = Job(
        name=name,
        args=args or {},
        status="pending",
        attempts=0,
        max_attempts=max_attempts,
        run_after=run_after or now,
        # Stamped when a wake-up will be sent, so the reconciler leaves the row alone for a while.
        enqueued_at=now if waker is not None else None,
        created_at=now,
    )
    db.add(job)
    await db.flush()
    job_id = job.id

    if waker is not None:

        async def wake() -> None:
            try:
                await waker(job_id)
            except Exception as exc:  # the broker is down, say: the reconciler wakes it later
                log.warning(
                    "wake-up for job %s not sent (%s); the reconciler will find it",
                    job_id,
                    type(exc).__name__,
                )

        after_commit(db, wake)
    return job
