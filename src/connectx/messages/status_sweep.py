"""Status callbacks recorded but never applied: found and applied by a sweep.

Every callback is recorded (``message_status_events``, once per wamid and status) and applied
to its message by one of three live paths: the processor's status move when the message exists;
otherwise the sender's look for early callbacks after it stores Meta's answer, and on PostgreSQL
the processor's look after its own commit (docs/outbound.md). One window is left: a process that
dies (or whose look fails) between its commit and its look leaves that callback recorded and
the message behind, until another callback for it comes, which may be never.

This sweep closes it. Every minute (a periodic job, ``messages.status_sweep``: one process runs
each due run), it goes through the callbacks recorded since the last sweep, in id order, and
applies to its message every one whose message now exists with a lower status, exactly as the
live look does (:func:`connectx.messages.service.apply_late_statuses`: forward-only moves, failed
notices, real-time publication). Its cursor (``sweep_cursors``) survives restarts; a first
sweep starts at the newest callback of its time. It stops at callbacks younger than
:data:`GRACE`, which the live looks are still due to apply, and goes through at most
:data:`BATCH` callbacks a run (a run that stops short enqueues the next at once).

A callback whose recording transaction was still open when a later id of the same table was
swept, and stayed open for longer than ``GRACE``, is passed over (processing transactions take
milliseconds; none is that long).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.kit.upsert import insert_ignore
from connectx.models.channel import Channel
from connectx.models.message import STATUS_RANK, Message, MessageStatusEvent
from connectx.models.sweep_cursor import STATUS_SWEEP, SweepCursor

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=30)
BATCH = 50_000

SWEPT = Counter(
    "connectx_statuses_swept_total",
    "Messages whose recorded status callbacks only the sweep applied (a live look was missed).",
)


async def _cursor(db: AsyncSession) -> int | None:
    stmt = select(SweepCursor.position).where(SweepCursor.name == STATUS_SWEEP)
    return (await db.execute(stmt)).scalar_one_or_none()


async def sweep(db: AsyncSession) -> bool:
    """One run in the caller's transaction. True when callbacks old enough to sweep are left
    beyond what this run went through (run again)."""
    cursor = await _cursor(db)
    events = MessageStatusEvent
    if cursor is None:  # the first sweep: from the newest callback on
        newest = await db.scalar(select(func.max(events.id)))
        values = {"name": STATUS_SWEEP, "position": int(newest or 0)}
        await db.execute(insert_ignore(db, SweepCursor, values))
        return False
    horizon = clock.now() - GRACE
    due = (
        select(events.id)
        .where(events.id > cursor, events.created_at < horizon)
        .order_by(events.id)
        .limit(BATCH)  # (by rows, not ids: rows erased or pruned leave gaps in the ids)
        .subquery()
    )
    upto = await db.scalar(select(func.max(due.c.id)))
    if upto is None:
        return False
    rank = case(STATUS_RANK, value=events.status, else_=-1)
    behind = (
        select(Message.id)
        .select_from(events)
        .join(Channel, Channel.id == events.channel_id)
        .join(
            Message,
            and_(
                Message.phone_number_id == Channel.phone_number_id,
                Message.wamid == events.wamid,
                Message.workspace_id == events.workspace_id,
            ),
        )
        .where(events.id > cursor, events.id <= upto, Message.status_rank < rank)
    )
    stmt = select(Message).where(Message.id.in_(behind)).order_by(Message.id)
    found = list((await db.execute(stmt)).scalars())
    if found:
        from connectx.messages.service import apply_late_statuses

        await apply_late_statuses(db, found)
        SWEPT.inc(len(found))
        log.warning("status sweep applied callbacks a live look missed, %d message(s)", len(found))
    await db.execute(
        update(SweepCursor)
        .where(SweepCursor.name == STATUS_SWEEP, SweepCursor.position < upto)
        .values(position=upto)
        .execution_options(synchronize_session=False)
    )
    left = await db.scalar(
        select(events.id).where(events.id > upto, events.created_at < horizon).limit(1)
    )
    return left is not None
