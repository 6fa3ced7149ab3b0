"""SQL for durable jobs: atomic claims, fenced completion, and the reconciler's sweeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.job import Job


@dataclass(frozen=True)
class Claim:
    """A job this worker now holds, for attempt number ``attempt``, until its lease ends."""

    id: int
    name: str
    args: dict[str, Any]
    attempt: int
    max_attempts: int


def _claimable(now: datetime) -> Any:
    return and_(
        Job.attempts < Job.max_attempts,
        or_(
            and_(Job.status == "pending", Job.run_after <= now),
            and_(Job.status == "running", Job.lease_until < now),
        ),
    )


async def claim(db: AsyncSession, job_id: int, now: datetime, lease: timedelta) -> Claim | None:
    """Take job ``job_id`` if it is due (or its previous holder's lease ran out), in one UPDATE."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, _claimable(now))
        .values(status="running", attempts=Job.attempts + 1, lease_until=now + lease)
        .returning(Job.id, Job.name, Job.args, Job.attempts, Job.max_attempts)
        .execution_options(synchronize_session=False)
    )
    row = (await db.execute(stmt)).first()
    if row is None:
        return None
    return Claim(
        id=row.id,
        name=row.name,
        args=dict(row.args or {}),
        attempt=row.attempts,
        max_attempts=row.max_attempts,
    )


def _held(job_id: int, attempt: int) -> Any:
    """The fence: the row is still ours only while it is running the attempt we claimed."""
    return and_(Job.id == job_id, Job.status == "running", Job.attempts == attempt)


async def _fenced(db: AsyncSession, job_id: int, attempt: int, **values: Any) -> bool:
    stmt = (
        update(Job)
        .where(_held(job_id, attempt))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = await db.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish(db: AsyncSession, job_id: int, attempt: int, now: datetime) -> bool:
    """Mark done in the handler's own transaction; False when another attempt took over."""
    return await _fenced(
        db, job_id, attempt, status="done", lease_until=None, last_error=None, finished_at=now
    )


async def retry_later(
    db: AsyncSession, job_id: int, attempt: int, run_after: datetime, error: str
) -> bool:
    return await _fenced(
        db,
        job_id,
        attempt,
        status="pending",
        run_after=run_after,
        lease_until=None,
        enqueued_at=None,
        last_error=error,
    )


async def fail(db: AsyncSession, job_id: int, attempt: int, error: str, now: datetime) -> bool:
    return await _fenced(
        db, job_id, attempt, status="failed", lease_until=None, last_error=error, finished_at=now
    )


async def fail_abandoned(db: AsyncSession, now: datetime) -> int:
    """Running jobs whose lease ran out on their last allowed attempt (their worker died or
    hung every time): they fail instead of being claimed again."""
    stmt = (
        update(Job)
        .where(
            Job.status == "running",
            Job.lease_until < now,
            Job.attempts >= Job.max_attempts,
        )
        .values(status="failed", lease_until=None, last_error="LeaseExpired", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    result = await db.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def take_stale_wakeups(
    db: AsyncSession, now: datetime, woken_before: datetime, limit: int
) -> list[int]:
    """Ids of due jobs that nobody woke since ``woken_before`` (a lost or never-sent wake-up, a
    retry whose backoff ended, a lease that ran out), marked as woken now. On PostgreSQL
    concurrent reconcilers split the rows between them (SKIP LOCKED)."""
    stmt = (
        select(Job.id)
        .where(
            _claimable(now),
            or_(Job.enqueued_at.is_(None), Job.enqueued_at < woken_before),
        )
        .order_by(Job.run_after, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await db.execute(stmt)).scalars())
    if ids:
        await db.execute(
            update(Job)
            .where(Job.id.in_(ids))
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


async def get(db: AsyncSession, job_id: int) -> Job | None:
    return await db.get(Job, job_id)


async def by_status(db: AsyncSession, status: str, limit: int = 100) -> list[Job]:
    stmt = select(Job).where(Job.status == status).order_by(Job.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())
