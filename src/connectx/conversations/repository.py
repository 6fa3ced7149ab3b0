"""SQL for conversations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.conversations import paging
from connectx.kit.membership import one_of
from connectx.kit.tenancy import get_in_workspace, scoped
from connectx.models.conversation import Conversation


async def unresolved(db: AsyncSession, contact_id: int, channel_id: int) -> Conversation | None:
    stmt = select(Conversation).where(
        Conversation.contact_id == contact_id,
        Conversation.channel_id == channel_id,
        Conversation.status != "resolved",
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def unresolved_many(
    db: AsyncSession, contact_ids: list[int], channel_ids: list[int]
) -> list[Conversation]:
    stmt = select(Conversation).where(
        one_of(db, Conversation.contact_id, set(contact_ids)),
        one_of(db, Conversation.channel_id, set(channel_ids)),
        Conversation.status != "resolved",
    )
    return list((await db.execute(stmt)).scalars())


async def add(db: AsyncSession, conversation: Conversation) -> None:
    db.add(conversation)
    await db.flush()


async def get(db: AsyncSession, workspace_id: int, conversation_id: int) -> Conversation:
    return await get_in_workspace(db, Conversation, conversation_id, workspace_id, "conversation")


async def of_contact(db: AsyncSession, contact_id: int) -> list[Conversation]:
    stmt = select(Conversation).where(Conversation.contact_id == contact_id)
    return list((await db.execute(stmt.order_by(Conversation.id))).scalars())


async def set_contact(db: AsyncSession, conversation_id: int, contact_id: int) -> None:
    await db.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(contact_id=contact_id)
    )


async def delete_conversation(db: AsyncSession, conversation_id: int) -> None:
    await db.execute(delete(Conversation).where(Conversation.id == conversation_id))


async def page(
    db: AsyncSession,
    workspace_id: int,
    *,
    status: str | None,
    channel_id: int | None,
    contact_id: int | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Conversation]:
    """Most recent activity first; ``after`` is the (last_message_at, id) of the previous
    page's last row."""
    stmt = scoped(Conversation, workspace_id)
    if status is not None:
        stmt = stmt.where(Conversation.status == status)
    if channel_id is not None:
        stmt = stmt.where(Conversation.channel_id == channel_id)
    if contact_id is not None:
        stmt = stmt.where(Conversation.contact_id == contact_id)
    if after is not None:
        stmt = stmt.where(paging.before(Conversation.last_message_at, Conversation.id, after))
    stmt = stmt.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())


_TOUCH = (
    update(Conversation.__table__)  # type: ignore[arg-type]
    .where(Conversation.__table__.c.id == bindparam("c_id"))
    .values(
        last_message_at=bindparam("c_last"),
        last_inbound_at=bindparam("c_inbound"),
        status=bindparam("c_status"),
        updated_at=bindparam("c_updated"),
    )
)


async def write_activity(db: AsyncSession, conversations: list[Conversation]) -> None:
    """Write these conversations' activity columns (last message, last inbound message,
    status, updated) as they are in memory: one executemany for a batch."""
    if not conversations:
        return
    conn = await db.connection()
    await conn.execute(
        _TOUCH,
        [
            {
                "c_id": c.id,
                "c_last": c.last_message_at,
                "c_inbound": c.last_inbound_at,
                "c_status": c.status,
                "c_updated": c.updated_at,
            }
            for c in conversations
        ],
    )
