"""Helpers for the jobs tests: enqueue in a committed transaction, read job rows and effects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from connectx.db.session import unit_of_work
from connectx.jobs import queue
from connectx.jobs import repository as jobs_repo
from connectx.mail import repository as mail_repo
from connectx.mail.service import open_message
from connectx.models.job import Job
from tests.jobs.tasks import EFFECT_KIND

T = TypeVar("T")


async def enqueue(name: str, args: dict[str, Any] | None = None, **kwargs: Any) -> int:
    async with unit_of_work() as db:
        job = await queue.enqueue(db, name, args, **kwargs)
        return job.id


async def job(job_id: int) -> Job:
    async with unit_of_work() as db:
        row = await jobs_repo.get(db, job_id)
        assert row is not None
        return row


async def effects() -> list[int]:
    """Job numbers whose effect (a ``test.effect`` mail) committed, one entry per row."""
    async with unit_of_work() as db:
        rows = [m for m in await mail_repo.latest(db, limit=1000) if m.kind == EFFECT_KIND]
        opened = [await open_message(db, m) for m in rows]
    return sorted(int(m.body.split()[1]) for m in opened)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    timeout: float = 10,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(0.05)


async def job_state(job_id: int) -> tuple[str, int]:
    row = await job(job_id)
    return row.status, row.attempts
