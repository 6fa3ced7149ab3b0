"""SQL the inbox pages need beyond the conversation and message repositories."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import scoped
from connectx.models.message import Message


async def latest_messages(
    db: AsyncSession, workspace_id: int, conversation_ids: list[int]
) -> dict[int, Message]:
    """The newest message of each conversation (one index probe each, through
    ``ix_messages_conversation_order``), by conversation id."""
    if not conversation_ids:
        return {}
    newest = []
    for cid in sorted(set(conversation_ids)):
        newest.append(
            select(Message.id)
            .where(Message.conversation_id == cid)
            .order_by(Message.sent_at.desc(), Message.id.desc())
            .limit(1)
            .scalar_subquery()
        )
    stmt = scoped(Message, workspace_id).where(Message.id.in_(newest))
    return {m.conversation_id: m for m in (await db.execute(stmt)).scalars()}


async def by_wamids(
    db: AsyncSession, workspace_id: int, conversation_id: int, wamids: list[str]
) -> list[Message]:
    """Messages of a conversation named by wamid (quoted messages not on the page shown)."""
    if not wamids:
        return []
    stmt = scoped(Message, workspace_id).where(
        Message.conversation_id == conversation_id, Message.wamid.in_(set(wamids))
    )
    return list((await db.execute(stmt)).scalars())


async def message_in(
    db: AsyncSession, workspace_id: int, conversation_id: int, message_id: int
) -> Message | None:
    stmt = scoped(Message, workspace_id).where(
        Message.conversation_id == conversation_id, Message.id == message_id
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def our_reactions_to(
    db: AsyncSession, workspace_id: int, conversation_id: int, wamid: str
) -> list[Message]:
    """The reactions the business sent to one message, oldest first."""
    stmt = scoped(Message, workspace_id).where(
        Message.conversation_id == conversation_id,
        Message.target_wamid == wamid,
        Message.type == "reaction",
        Message.direction == "out",
    )
    return list((await db.execute(stmt.order_by(Message.sent_at, Message.id))).scalars())
