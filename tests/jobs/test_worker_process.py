"""``connectx worker`` as separate processes: a worker killed mid-job (SIGKILL) loses nothing and
duplicates nothing after a restart; two workers side by side never run a job's effects twice;
SIGTERM stops a worker gracefully. Each runs without a broker (the reconciler polls the
database; SQLite or PostgreSQL) and, with PostgreSQL, on RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectx.config import get_settings
from connectx.jobs.runtime import Runtime
from tests.jobs.processes import SIGINT, SIGKILL, SIGTERM, Workers, wait_exit
from tests.jobs.support import effects, enqueue, eventually, job, job_state

pytestmark = pytest.mark.slow


@pytest.fixture
async def publisher(workers: Workers) -> AsyncIterator[Runtime | None]:
    """With a broker, this process publishes wake-ups as a web node does; without one, nothing
    is published and the workers find jobs by polling."""
    settings = get_settings()
    if not settings.broker_url:
        yield None
        return
    runtime = Runtime(settings, work=False)
    await asyncio.to_thread(runtime.start)
    try:
        yield runtime
    finally:
        await asyncio.to_thread(runtime.stop)


def started(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


async def _lease_ran_out(job_id: int) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from connectx.db.session import unit_of_work
    from connectx.models.job import Job

    past = datetime.now(UTC) - timedelta(seconds=1)
    async with unit_of_work() as db:
        await db.execute(update(Job).where(Job.id == job_id).values(lease_until=past))


async def test_a_worker_killed_mid_job_completes_it_exactly_once_after_restart(
    workers: Workers, publisher: Runtime | None, tmp_path: Path
) -> None:
    gate, marker = tmp_path / "gate", tmp_path / "marker"
    # A long lease: the handler may not outlive it, and a kill that comes late on a loaded
    # machine must still find attempt 1 running (a 3 s lease timed it out first, then retried).
    first = workers.start(CONNECTX_JOB_LEASE_S="300")
    # The job writes its effect, then waits mid-way (effect written, not yet committed).
    job_id = await enqueue(
        "testjobs.record",
        {"n": 1, "gate": str(gate), "marker": str(marker), "write_first": True},
    )

    async def attempts_started() -> int:
        return started(marker)

    try:
        await eventually(attempts_started, lambda n: n >= 1, timeout=90, what="the job to start")
    except AssertionError:
        raise AssertionError(workers.output()) from None
    first.send_signal(SIGKILL)
    first.wait(10)

    # The kill lost the uncommitted effect; the job is still held by the dead worker's lease.
    assert await job_state(job_id) == ("running", 1)
    assert await effects() == []

    # The dead worker's lease runs out (set in the row rather than waited for).
    await _lease_ran_out(job_id)
    gate.touch()
    second = workers.start()
    try:
        await eventually(
            lambda: job_state(job_id), lambda s: s[0] == "done", timeout=90, what="completion"
        )
    except AssertionError:
        raise AssertionError(workers.output()) from None
    row = await job(job_id)
    assert row.attempts == 2 and row.last_error is None
    assert started(marker) == 2
    assert await effects() == [1]  # exactly once
    # The mail the job sent was delivered by the worker too (to the local outbox).
    from connectx.db.session import unit_of_work
    from connectx.mail import repository as mail_repo

    async def mail_statuses() -> list[str]:
        async with unit_of_work() as db:
            return [m.status for m in await mail_repo.latest(db)]

    await eventually(mail_statuses, lambda s: s == ["local"], timeout=90, what="mail delivery")
    # A worker stops gracefully on SIGTERM.
    assert wait_exit(second, SIGTERM) == 0, workers.output()


async def test_two_workers_never_run_a_job_twice(
    workers: Workers, publisher: Runtime | None
) -> None:
    count = 30
    a, b = workers.start(), workers.start()
    expected = (
        "polling the database" if workers.broker == "no-broker" else f"{workers.broker} queue"
    )

    async def ready() -> int:
        return workers.output().count(expected)

    # Both compete only once both are up (a loaded machine can take many seconds to start one).
    await eventually(ready, lambda n: n == 2, timeout=150, what="both workers started")
    ids = [await enqueue("testjobs.record", {"n": n}) for n in range(count)]

    async def done() -> int:
        return sum([(await job_state(i))[0] == "done" for i in ids])

    try:
        await eventually(done, lambda n: n == count, timeout=150, what="all jobs done")
    except AssertionError:
        raise AssertionError(workers.output()) from None
    # Every job was claimed once, by one worker, and its effect committed once.
    assert [(await job_state(i)) for i in ids] == [("done", 1)] * count
    assert await effects() == list(range(count))
    output = workers.output()
    assert "taken over" not in output
    assert output.count(expected) == 2, output
    assert wait_exit(a, SIGINT) == 0 and wait_exit(b, SIGTERM) == 0, output


async def test_sigterm_lets_the_running_job_finish(
    workers: Workers, publisher: Runtime | None, tmp_path: Path
) -> None:
    gate, marker = tmp_path / "gate", tmp_path / "marker"
    proc = workers.start()
    job_id = await enqueue("testjobs.record", {"n": 9, "gate": str(gate), "marker": str(marker)})

    async def attempts_started() -> int:
        return started(marker)

    try:
        await eventually(attempts_started, lambda n: n == 1, timeout=90, what="the job to start")
    except AssertionError:
        raise AssertionError(workers.output()) from None
    proc.send_signal(SIGTERM)
    await asyncio.sleep(1)
    assert proc.poll() is None, "the worker quit with a job in hand"
    gate.touch()
    assert await asyncio.to_thread(wait_exit, proc, None) == 0, workers.output()
    assert await job_state(job_id) == ("done", 1)
    assert await effects() == [9]
