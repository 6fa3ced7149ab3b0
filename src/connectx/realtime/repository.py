"""SQL the real-time hooks need: what changed, by id (no content)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import scoped
from connectx.models.message import Message


async def message_refs(
    db: AsyncSession, workspace_id: int, message_ids: list[int]
) -> list[tuple[int, int, str, str]]:
    """(id, conversation id, direction, status) of these messages."""
    if not message_ids:
        return []
    stmt = scoped(
        Message,
        workspace_id,
        Message.id,
        Message.conversation_id,
        Message.direction,
        Message.status,
    ).where(Message.id.in_(set(message_ids)))
    return [(r[0], r[1], r[2], r[3]) for r in (await db.execute(stmt)).all()]
