"""Embedded mode takes a backup every day and keeps only the newest CONNECTX_BACKUP_KEEP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import connectx.backups.tasks  # noqa: F401  (registers the schedule)
from connectx.backups import service
from connectx.backups.tasks import embedded
from connectx.config import get_settings, reset_settings
from connectx.db.session import unit_of_work
from connectx.jobs import periodic, runner
from connectx.kit import clock
from connectx.models.job import Job
from tests.retention.support import events
from tests.support.factories import make_user


@pytest.fixture
def daily_backups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("CONNECTX_PERIODIC_TASKS", "true")
    monkeypatch.setenv("CONNECTX_BACKUP_DIR", str(tmp_path))
    monkeypatch.setenv("CONNECTX_BACKUP_KEEP", "2")
    reset_settings()
    yield tmp_path
    monkeypatch.undo()
    reset_settings()


async def _backup_jobs() -> list[Job]:
    async with unit_of_work() as db:
        stmt = select(Job).where(Job.name == "backups.create", Job.status == "pending")
        return list((await db.execute(stmt)).scalars())


async def test_daily_backups_rotate_in_embedded_mode(daily_backups: Path) -> None:
    if not embedded(get_settings()):
        pytest.skip("scheduled backups are for the embedded (SQLite) deployment")
    await make_user(email="daily@example.com")
    await periodic.tick()
    assert await _backup_jobs() == []
    for day in range(3):
        clock.advance(timedelta(days=1))
        await periodic.tick()
        [job] = await _backup_jobs()
        assert await runner.run_job(job.id) == runner.Outcome.DONE, day
        clock.advance(timedelta(seconds=2))  # distinct file names
    kept = service.list_backups(daily_backups)
    assert [b.kind for b in kept].count("data") == 2 and [b.kind for b in kept].count("keys") == 2
    assert len(list(daily_backups.glob("*.cxbak"))) == 2
    assert len(await events("backup.created")) == 3
    assert [e.data for e in await events("backup.rotated")][-1] == {"deleted": 2, "keep": 2}


async def test_no_scheduled_backups_outside_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTX_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    reset_settings()
    try:
        assert embedded(get_settings()) is False
    finally:
        monkeypatch.undo()
        reset_settings()
