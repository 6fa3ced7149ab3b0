"""Queue real-time events in a transaction; they go out once it commits (house rule 3).

    from connectx.realtime import publish as realtime
    realtime.after_commit(db, workspace_id, "conversation.assigned", conversation_id=7, ...)

Events of one transaction are published together, in the order they were queued. A failed
publication is logged (type only) and never undoes the committed change.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.db import session as db_session
from connectx.realtime import bus
from connectx.realtime.events import Event, Scalar

log = logging.getLogger(__name__)

_KEY = "realtime_events"


def after_commit(
    db: AsyncSession,
    workspace_id: int,
    type_: str,
    *,
    user_id: int | None = None,
    **data: Scalar | list[int],
) -> None:
    event = Event(workspace_id=workspace_id, type=type_, data=dict(data), user_id=user_id)
    queued: list[Event] | None = db.info.get(_KEY)
    if queued is None:
        queued = db.info[_KEY] = []

        async def flush() -> None:
            events = db.info.pop(_KEY, [])
            await send(events)

        db_session.after_commit(db, flush)
    queued.append(event)


async def send(events: list[Event]) -> None:
    """Publish now (the caller's transaction has committed)."""
    try:
        await bus.publish(events)
    except Exception as exc:
        log.error("real-time publication failed: %s", type(exc).__name__)
