"""Periodic work (daily retention, scheduled backups): a job enqueued when a schedule falls due.

Modules register schedules at import (the task modules the runtime loads)::

    periodic.every("retention.daily", "retention.run", hour_utc=lambda s: s.retention_hour_utc)

Every process that runs background work calls :func:`tick` from its reconciler loop. A schedule's
next run time is a row (``periodic_runs``); the process that moves it forward with a
compare-and-set is the one that enqueues the job, in the same transaction, so a due run is
enqueued exactly once however many workers tick. A run missed while nothing was running is
enqueued once when a worker comes back (not once per missed day).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import Settings, get_settings
from connectx.db.session import unit_of_work
from connectx.jobs.queue import enqueue
from connectx.kit import clock
from connectx.kit.upsert import insert_ignore
from connectx.models.retention import PeriodicRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    interval: timedelta = timedelta(days=1)
    # For daily schedules: the hour (UTC) the run falls due; None: ``interval`` after the last.
    hour_utc: Callable[[Settings], int] | None = None
    enabled: Callable[[Settings], bool] = lambda _settings: True
    args: dict[str, Any] = field(default_factory=dict)

    def next_after(self, moment: datetime, settings: Settings) -> datetime:
        if self.hour_utc is None:
            return moment + self.interval
        hour = max(0, min(23, int(self.hour_utc(settings))))
        due = moment.replace(hour=hour, minute=0, second=0, microsecond=0)
        while due <= moment:
            due += self.interval
        return due


_schedules: dict[str, Schedule] = {}


def every(
    name: str,
    task: str,
    *,
    interval: timedelta = timedelta(days=1),
    hour_utc: Callable[[Settings], int] | None = None,
    enabled: Callable[[Settings], bool] | None = None,
    args: dict[str, Any] | None = None,
) -> Schedule:
    """Register (or replace) a schedule that enqueues ``task`` every ``interval``."""
    schedule = Schedule(
        name=name,
        task=task,
        interval=interval,
        hour_utc=hour_utc,
        enabled=enabled or (lambda _settings: True),
        args=dict(args or {}),
    )
    _schedules[name] = schedule
    return schedule


def schedules() -> list[Schedule]:
    return [_schedules[name] for name in sorted(_schedules)]


async def _due(db: AsyncSession, schedule: Schedule, settings: Settings) -> int | None:
    now = clock.now()
    row = (
        await db.execute(select(PeriodicRun).where(PeriodicRun.name == schedule.name))
    ).scalar_one_or_none()
    if row is None:
        first = schedule.next_after(now, settings)
        await db.execute(
            insert_ignore(db, PeriodicRun, {"name": schedule.name, "next_run_at": first})
        )
        return None
    if row.next_run_at > now:
        return None
    claimed = await db.execute(
        update(PeriodicRun)
        .where(PeriodicRun.name == schedule.name, PeriodicRun.next_run_at == row.next_run_at)
        .values(next_run_at=schedule.next_after(now, settings), last_enqueued_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None  # another process claimed this run
    job = await enqueue(db, schedule.task, dict(schedule.args), max_attempts=3)
    await db.execute(
        update(PeriodicRun)
        .where(PeriodicRun.name == schedule.name)
        .values(last_job_id=job.id)
        .execution_options(synchronize_session=False)
    )
    return job.id


async def tick() -> list[int]:
    """Enqueue every schedule that is due (and create the rows of new ones). Returns job ids."""
    settings = get_settings()
    if not settings.periodic_tasks:
        return []
    enqueued: list[int] = []
    for schedule in schedules():
        if not schedule.enabled(settings):
            continue
        async with unit_of_work() as db:
            job_id = await _due(db, schedule, settings)
        if job_id is not None:
            log.info("periodic %s: job %s enqueued", schedule.name, job_id)
            enqueued.append(job_id)
    return enqueued
