"""SQL the real-time hooks need: what changed, by id (no content)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import scoped
from connectx.models.channel import Channel
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


async def status_refs(
    db: AsyncSession, workspace_id: int, wamids: list[str]
) -> list[tuple[int, int, str]]:
    """(id, conversation id, status) of the workspace's messages with these wamids."""
    if not wamids:
        return []
    numbers = scoped(Channel, workspace_id, Channel.phone_number_id).scalar_subquery()
    stmt = scoped(Message, workspace_id, Message.id, Message.conversation_id, Message.status).where(
        Message.phone_number_id.in_(numbers), Message.wamid.in_(set(wamids))
    )
    return [(r[0], r[1], r[2]) for r in (await db.execute(stmt)).all()]
