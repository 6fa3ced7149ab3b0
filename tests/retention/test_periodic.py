"""The daily schedule: due runs are enqueued exactly once however many workers tick, and the
retention job removes what expired."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

import connectx.retention.tasks  # noqa: F401  (registers the daily schedule)
from connectx.config import reset_settings
from connectx.db.session import unit_of_work
from connectx.jobs import periodic, runner
from connectx.kit import clock
from connectx.models.account import LoginAttempt
from connectx.models.job import Job
from connectx.models.retention import PeriodicRun
from tests.retention.support import count, events
from tests.support.factories import make_user


@pytest.fixture
def schedules_on(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CONNECTX_PERIODIC_TASKS", "true")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


async def _runs(name: str) -> list[Job]:
    async with unit_of_work() as db:
        return list((await db.execute(select(Job).where(Job.name == name))).scalars())


async def test_a_due_run_is_enqueued_once_and_removes_expired_rows(schedules_on: None) -> None:
    from connectx.accounts.throttle import Throttle

    await make_user(email="tick@example.com")
    async with unit_of_work() as db:
        await Throttle(db, "signin", account="tick@example.com", request=None).failed()
    assert await count(LoginAttempt) >= 1

    await periodic.tick()  # first sight: the schedule's row is created
    assert await _runs("retention.run") == []
    async with unit_of_work() as db:
        row = (
            await db.execute(select(PeriodicRun).where(PeriodicRun.name == "retention.daily"))
        ).scalar_one()
    assert row.next_run_at > clock.now() and row.next_run_at.hour == 3
    await periodic.tick()
    assert await _runs("retention.run") == []  # not due yet

    clock.advance(timedelta(days=91))
    await asyncio.gather(periodic.tick(), periodic.tick())
    runs = await _runs("retention.run")
    assert len(runs) == 1  # two workers ticked; one job
    enqueued = [runs[0].id]
    await periodic.tick()
    assert len(await _runs("retention.run")) == 1  # the next run is tomorrow

    outcome = await runner.run_job(enqueued[0])
    assert outcome == runner.Outcome.DONE
    assert await count(LoginAttempt) == 0
    [summary] = await events("retention.run")
    assert summary.data["complete"] is True and summary.data["removed"] >= 1
    async with unit_of_work() as db:
        row = (
            await db.execute(select(PeriodicRun).where(PeriodicRun.name == "retention.daily"))
        ).scalar_one()
    assert row.last_job_id == enqueued[0]
    assert timedelta(0) < row.next_run_at - clock.now() <= timedelta(days=1)


async def test_schedules_are_off_when_configured_so() -> None:
    clock.advance(timedelta(days=3))
    assert await periodic.tick() == []
    assert await count(PeriodicRun) == 0
