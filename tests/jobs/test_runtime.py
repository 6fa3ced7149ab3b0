"""The embedded runtime (what `connectx serve` runs without a broker): jobs run after commit,
fail and retry with bounded backoff, give up after their last attempt, are recovered by the
reconciler when a wake-up is lost, and commit their effects once even when two attempts race."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import tests.jobs.tasks  # noqa: F401  (registers the test tasks in this process)
from connectx.config import get_settings
from connectx.jobs import queue
from connectx.kit import clock
from tests.jobs.support import effects, enqueue, eventually, job, job_state

pytestmark = pytest.mark.usefixtures("app")  # the app's lifespan starts the embedded runtime


async def test_a_committed_job_runs_once() -> None:
    job_id = await enqueue("testjobs.record", {"n": 1})
    await eventually(lambda: job_state(job_id), lambda s: s[0] == "done", what="job done")
    row = await job(job_id)
    assert (row.attempts, row.last_error, row.lease_until) == (1, None, None)
    assert row.finished_at is not None
    assert await effects() == [1]


async def test_a_rolled_back_enqueue_leaves_nothing_to_run() -> None:
    from connectx.db.session import unit_of_work

    with pytest.raises(RuntimeError):
        async with unit_of_work() as db:
            await queue.enqueue(db, "testjobs.record", {"n": 2})
            raise RuntimeError("the business change failed")
    await clock_independent_pause()
    assert await effects() == []


async def clock_independent_pause(seconds: float = 1.2) -> None:
    import asyncio

    await asyncio.sleep(seconds)  # more than two reconcile intervals (0.5 s in tests)


async def test_failures_retry_with_bounded_exponential_backoff() -> None:
    settings = get_settings()
    base = settings.job_backoff_base_s
    job_id = await enqueue("testjobs.flaky", {"n": 3, "fail_times": 2}, max_attempts=5)

    for attempt in (1, 2):
        state = await eventually(
            lambda: job_state(job_id),
            lambda s, a=attempt: s == ("pending", a),
            what=f"attempt {attempt} to fail",
        )
        row = await job(job_id)
        # Only the exception's class is kept: its message carried an address and a phone.
        assert row.last_error == "ValueError", state
        delay = (row.run_after - clock.now()).total_seconds()
        step = base * 2 ** (attempt - 1)
        assert 0.5 * step - 1 <= delay <= step, (attempt, delay)
        # Not due yet: nothing runs it early.
        await clock_independent_pause()
        assert await job_state(job_id) == ("pending", attempt)
        clock.advance(timedelta(seconds=step + 1))

    await eventually(lambda: job_state(job_id), lambda s: s == ("done", 3), what="job done")
    assert (await job(job_id)).last_error is None
    assert await effects() == [3]


async def test_backoff_is_capped() -> None:
    from connectx.jobs.runner import backoff

    settings = get_settings()
    for attempt in range(1, 40):
        delay = backoff(attempt, settings).total_seconds()
        assert delay <= settings.job_backoff_max_s
    assert backoff(30, settings).total_seconds() >= settings.job_backoff_max_s / 2


async def test_a_job_fails_for_good_after_its_last_attempt() -> None:
    job_id = await enqueue("testjobs.boom", {"n": 4}, max_attempts=2)
    await eventually(lambda: job_state(job_id), lambda s: s == ("pending", 1), what="attempt 1")
    clock.advance(timedelta(seconds=get_settings().job_backoff_base_s + 1))
    await eventually(lambda: job_state(job_id), lambda s: s == ("failed", 2), what="failure")
    row = await job(job_id)
    assert row.last_error == "RuntimeError"
    assert row.finished_at is not None and row.lease_until is None
    # Each attempt's effects were rolled back with it.
    assert await effects() == []
    # And a failed job stays failed.
    clock.advance(timedelta(hours=2))
    await clock_independent_pause()
    assert await job_state(job_id) == ("failed", 2)


async def test_a_task_without_a_handler_fails_clearly(caplog: pytest.LogCaptureFixture) -> None:
    job_id = await enqueue("nobody.handles_this", {"x": 1})
    await eventually(lambda: job_state(job_id), lambda s: s[0] == "failed", what="failure")
    row = await job(job_id)
    assert (row.attempts, row.last_error) == (1, "UnknownTask")
    assert any(
        "no handler is registered for task 'nobody.handles_this'" in r.getMessage()
        for r in caplog.records
    )


async def test_a_lost_wakeup_is_recovered_by_the_reconciler() -> None:
    real = queue.current_waker()
    dropped: list[int] = []

    async def lose(job_id: int) -> None:
        dropped.append(job_id)  # the broker "lost" this message

    queue.set_waker(lose)
    try:
        job_id = await enqueue("testjobs.record", {"n": 5})
    finally:
        queue.set_waker(real)
    assert dropped == [job_id]
    created = (await job(job_id)).created_at
    await eventually(
        lambda: job_state(job_id), lambda s: s[0] == "done", timeout=10, what="reconciler"
    )
    row = await job(job_id)
    assert row.enqueued_at is not None and row.enqueued_at > created  # woken again, later
    assert await effects() == [5]


async def test_a_job_due_later_waits_for_its_time() -> None:
    job_id = await enqueue(
        "testjobs.record", {"n": 6}, run_after=clock.now() + timedelta(minutes=10)
    )
    await clock_independent_pause()
    assert await job_state(job_id) == ("pending", 0)
    clock.advance(timedelta(minutes=10, seconds=1))
    await eventually(lambda: job_state(job_id), lambda s: s[0] == "done", what="job done")
    assert await effects() == [6]


async def test_an_attempt_that_lost_its_lease_cannot_commit(tmp_path: Path) -> None:
    """Attempt 1 stalls past its lease; attempt 2 takes the job over while 1 is still running.
    Both then try to write the effect: only the attempt that holds the job commits."""
    gate, marker = tmp_path / "gate", tmp_path / "marker"
    job_id = await enqueue("testjobs.record", {"n": 7, "gate": str(gate), "marker": str(marker)})

    def started() -> int:
        return len(marker.read_text().splitlines()) if marker.exists() else 0

    async def attempts_started() -> int:
        return started()

    await eventually(attempts_started, lambda n: n == 1, what="attempt 1 to start")
    clock.advance(timedelta(seconds=get_settings().job_lease_s + 1))  # its lease runs out
    await eventually(attempts_started, lambda n: n == 2, what="attempt 2 to take over")
    assert await job_state(job_id) == ("running", 2)
    gate.touch()
    await eventually(lambda: job_state(job_id), lambda s: s == ("done", 2), what="job done")
    await clock_independent_pause()
    assert await effects() == [7]
