"""Run one job: claim it, run its handler in one transaction that also marks it done (fenced on
the attempt number), or schedule a retry with backoff, or fail it for good.

A wake-up only carries a job id; everything else is read from the row, so duplicated, late or
lost wake-ups are harmless: a claim succeeds for at most one worker at a time, and a handler's
database effects commit only together with its own attempt's completion.
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from contextvars import ContextVar
from datetime import timedelta
from enum import StrEnum

from prometheus_client import Counter

from connectx.config import Settings, get_settings
from connectx.db.session import unit_of_work
from connectx.jobs import queue, registry
from connectx.jobs import repository as repo
from connectx.kit import clock

log = logging.getLogger(__name__)

JOBS = Counter("connectx_jobs_total", "Job attempts by task and outcome.", ["task", "outcome"])


class Outcome(StrEnum):
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"  # not claimable: done already, not due, or held by a live lease
    SUPERSEDED = "superseded"  # our lease ran out and another attempt took the job over


_current: ContextVar[repo.Claim | None] = ContextVar("connectx_current_job", default=None)


def current() -> repo.Claim | None:
    """The job (id, attempt, max_attempts) whose handler is running, for handlers that must
    act on their last attempt."""
    return _current.get()


class LeaseLost(Exception):
    """The job was claimed again by another worker while this attempt ran."""


def backoff(attempt: int, settings: Settings) -> timedelta:
    """Exponential in the attempt number, capped, with jitter (50-100 % of the step)."""
    step = min(settings.job_backoff_max_s, settings.job_backoff_base_s * 2 ** (attempt - 1))
    return timedelta(seconds=step * random.uniform(0.5, 1.0))


async def run_job(job_id: int) -> Outcome:
    settings = get_settings()
    lease = timedelta(seconds=settings.job_lease_s)
    async with unit_of_work() as db:
        claim = await repo.claim(db, job_id, clock.now(), lease)
    if claim is None:
        return Outcome.SKIPPED

    handler = registry.handler_for(claim.name)
    if handler is None:
        async with unit_of_work() as db:
            await repo.fail(db, claim.id, claim.attempt, "UnknownTask", clock.now())
        log.error("job %s failed: no handler is registered for task %r", claim.id, claim.name)
        JOBS.labels(claim.name, Outcome.FAILED).inc()
        return Outcome.FAILED

    token = _current.set(claim)
    try:
        # A handler may not outlive its lease: past it, another worker may claim the job.
        async with asyncio.timeout(settings.job_lease_s):
            async with unit_of_work() as db:
                await handler(db, dict(claim.args))
                if not await repo.finish(db, claim.id, claim.attempt, clock.now()):
                    raise LeaseLost()
    except LeaseLost:
        log.warning(
            "job %s (%s) attempt %s was taken over by another attempt; its effects were "
            "rolled back",
            claim.id,
            claim.name,
            claim.attempt,
        )
        JOBS.labels(claim.name, Outcome.SUPERSEDED).inc()
        return Outcome.SUPERSEDED
    except Exception as exc:
        # Only the class name (and where it was raised): its message may carry personal data.
        return await _record_failure(claim, type(exc).__name__, settings, _origin(exc))
    finally:
        _current.reset(token)
    JOBS.labels(claim.name, Outcome.DONE).inc()
    return Outcome.DONE


def _origin(exc: BaseException) -> str:
    """Where an exception was raised (file, line, function): no values, no message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename}:{last.lineno} in {last.name}"


async def _record_failure(
    claim: repo.Claim, error: str, settings: Settings, origin: str
) -> Outcome:
    now = clock.now()
    async with unit_of_work() as db:
        if claim.attempt >= claim.max_attempts:
            await repo.fail(db, claim.id, claim.attempt, error, now)
            outcome = Outcome.FAILED
        else:
            run_after = now + backoff(claim.attempt, settings)
            await repo.retry_later(db, claim.id, claim.attempt, run_after, error)
            outcome = Outcome.RETRY
    log.warning(
        "job %s (%s) attempt %s/%s raised %s (at %s): %s",
        claim.id,
        claim.name,
        claim.attempt,
        claim.max_attempts,
        error,
        origin,
        "gave up" if outcome is Outcome.FAILED else "will retry",
    )
    JOBS.labels(claim.name, outcome).inc()
    return outcome


async def reconcile(wake: queue.Waker | None = None, *, batch: int = 200) -> list[int]:
    """One reconciler pass: fail jobs abandoned on their last attempt, then wake (in batches)
    due jobs nobody woke recently. Returns the ids it woke."""
    settings = get_settings()
    waker = wake or queue.current_waker()
    now = clock.now()
    # A wake-up younger than a few reconcile intervals is probably still in the broker's queue.
    woken_before = now - timedelta(seconds=max(3 * settings.reconcile_interval_s, 1.0))
    woken: list[int] = []
    async with unit_of_work() as db:
        abandoned = await repo.fail_abandoned(db, now)
    if abandoned:
        log.warning("%s job(s) failed: their lease ran out on the last attempt", abandoned)
    if waker is None:
        return woken
    for _ in range(10):
        async with unit_of_work() as db:
            ids = await repo.take_stale_wakeups(db, now, woken_before, batch)
        for job_id in ids:
            await waker(job_id)
        woken.extend(ids)
        if len(ids) < batch:
            break
    return woken
