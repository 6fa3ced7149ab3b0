"""Events of the sender: outbound messages accepted by Meta or failed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.realtime import publish
from connectx.realtime import repository as repo


async def outbound_recorded(db: AsyncSession, changes: list[tuple[int, int]]) -> None:
    """The sender recorded these (workspace, message id) results in ``db``'s transaction:
    publish each message's status once it commits."""
    by_ws: dict[int, list[int]] = {}
    for ws, message_id in changes:
        by_ws.setdefault(ws, []).append(message_id)
    for ws, ids in by_ws.items():
        for message_id, conversation_id, _direction, status in await repo.message_refs(db, ws, ids):
            publish.after_commit(
                db,
                ws,
                "message.status",
                message_id=message_id,
                conversation_id=conversation_id,
                status=status,
            )
