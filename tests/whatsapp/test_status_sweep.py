"""Status callbacks recorded but never applied (a process died between its commit and its look
after it) are applied by the periodic status sweep (messages/status_sweep.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from connectx.config import reset_settings
from connectx.db.session import unit_of_work
from connectx.jobs import periodic, runner
from connectx.kit import clock
from connectx.messages import status_sweep
from connectx.models.job import Job
from connectx.models.message import MessageStatusEvent
from connectx.models.sweep_cursor import SweepCursor
from tests.whatsapp.support import delivered, drain, rows
from tests.whatsapp.test_statuses import outbound, status_of, statuses_payload

TS = 1767225601


async def _sweep() -> bool:
    async with unit_of_work() as db:
        return await status_sweep.sweep(db)


async def _cursor() -> int:
    (row,) = await rows(SweepCursor)
    return int(row.position)


async def _recorded_before_their_messages(
    client: httpx.AsyncClient, items: list[tuple[str, str, int]], *late: str
) -> None:
    """The sweep's cursor placed; callbacks recorded for wamids no message has yet; then the
    ``late`` wamids' messages stored by a sender that dies before its look."""
    assert await _sweep() is False  # the first sweep starts at the newest callback
    await delivered(client, statuses_payload(*items))
    await drain()
    for wamid in late:
        await outbound(wamid)


async def test_a_callback_no_live_look_applied_is_applied_by_the_sweep(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    await _recorded_before_their_messages(
        client, [("wamid.LOST", "sent", TS), ("wamid.LOST", "read", TS)], "wamid.LOST"
    )
    start = await _cursor()  # (the callbacks are after it: the first sweep placed it before)
    assert (await status_of("wamid.LOST")).status == "accepted"

    assert await _sweep() is False  # younger than GRACE: the live looks are still due
    assert (await status_of("wamid.LOST")).status == "accepted" and await _cursor() == start

    clock.advance(status_sweep.GRACE + timedelta(seconds=1))
    assert await _sweep() is False
    message = await status_of("wamid.LOST")
    assert (message.status, message.status_rank) == ("read", 3)  # the furthest, as live
    assert await _cursor() > start

    mark = await _cursor()
    assert await _sweep() is False  # nothing new: the cursor stays
    assert await _cursor() == mark


async def test_applied_callbacks_are_left_alone_and_a_short_run_asks_for_the_next(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await outbound("wamid.LIVE")  # the message existed: the processor applied its callbacks
    items = [("wamid.LIVE", "delivered", TS), ("wamid.LATE", "sent", TS)]
    await _recorded_before_their_messages(
        client, [*items, ("wamid.LATE", "delivered", TS)], "wamid.LATE"
    )
    live = await status_of("wamid.LIVE")
    assert live.status == "delivered"

    clock.advance(status_sweep.GRACE + timedelta(seconds=1))
    monkeypatch.setattr(status_sweep, "BATCH", 1)  # one callback a run
    start = await _cursor()
    runs = 1
    while await _sweep():
        runs += 1
    assert runs == 3 and await _cursor() == start + 3
    assert (await status_of("wamid.LATE")).status == "delivered"
    again = await status_of("wamid.LIVE")
    assert (again.status, again.status_at) == ("delivered", live.status_at)


async def test_ids_left_by_erased_callbacks_do_not_stop_the_sweep(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Erasure and retention delete callbacks: the ids after the cursor can have gaps wider
    than a run; a run goes through its number of callbacks, not of ids."""
    items = [(w, s, TS) for w in ("wamid.GONE", "wamid.KEPT") for s in ("sent", "delivered")]
    await _recorded_before_their_messages(client, items, "wamid.KEPT")
    async with unit_of_work() as db:  # (as erasure of the first contact's data would)
        await db.execute(delete(MessageStatusEvent).where(MessageStatusEvent.wamid == "wamid.GONE"))
    clock.advance(status_sweep.GRACE + timedelta(seconds=1))
    monkeypatch.setattr(status_sweep, "BATCH", 1)
    while await _sweep():
        pass
    assert (await status_of("wamid.KEPT")).status == "delivered"


@pytest.fixture
def schedules_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CONNECTX_PERIODIC_TASKS", "true")
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


async def test_the_sweep_is_a_periodic_job(
    client: httpx.AsyncClient,
    channel: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    schedules_on: None,
) -> None:
    """Registered every minute; its job sweeps, and one that stops short enqueues the next."""
    (schedule,) = [s for s in periodic.schedules() if s.name == "messages.status_sweep"]
    assert schedule.interval == timedelta(minutes=1)

    await _recorded_before_their_messages(
        client, [("wamid.JOB", "sent", TS), ("wamid.JOB", "delivered", TS)], "wamid.JOB"
    )
    clock.advance(status_sweep.GRACE + timedelta(seconds=1))
    monkeypatch.setattr(status_sweep, "BATCH", 1)

    await periodic.tick()  # first sight of the schedules: their rows
    clock.advance(timedelta(minutes=2))
    await periodic.tick()
    deadline = asyncio.get_running_loop().time() + 15
    while True:  # run the chain out (the app's own job runtime may take some of its jobs)
        async with unit_of_work() as db:
            stmt = select(Job.id, Job.status).where(
                Job.name == "messages.status_sweep", Job.status.in_(("pending", "running"))
            )
            unfinished = (await db.execute(stmt)).all()
        if not unfinished:
            break
        assert asyncio.get_running_loop().time() < deadline, unfinished
        for job_id, status in unfinished:
            if status == "pending":
                await runner.run_job(job_id)
        await asyncio.sleep(0.02)
    async with unit_of_work() as db:
        stmt = select(Job.status).where(Job.name == "messages.status_sweep")
        assert set((await db.execute(stmt)).scalars()) == {"done"}
    assert (await status_of("wamid.JOB")).status == "delivered"
