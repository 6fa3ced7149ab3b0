"""SQL the inbox pages need beyond the conversation and message repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import scoped
from connectx.models.conversation import Conversation
from connectx.models.message import Message


async def latest_messages(
    db: AsyncSession, workspace_id: int, conversation_ids: list[int]
) -> dict[int, Any]:
    """The newest message of each conversation, by conversation id: the columns a list row's
    preview needs (not whole messages). One statement of constant shape whatever the page size
    (the conversation ids are one expanding parameter, so it compiles once): for each
    conversation a correlated probe of ``ix_messages_conversation_order`` picks the newest id."""
    if not conversation_ids:
        return {}
    newest = (
        select(Message.id)
        .where(Message.conversation_id == Conversation.id)
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    # Conversations by primary key only: the messages are scoped to the workspace below, and a
    # workspace condition here makes SQLite (no statistics) scan the workspace's conversations
    # through ix_conversations_workspace_activity instead of 30 key lookups.
    ids = select(newest).where(Conversation.id.in_(bindparam("ids", expanding=True)))
    stmt = scoped(Message, workspace_id, *PREVIEW_COLUMNS).where(Message.id.in_(ids))
    rows = await db.execute(stmt, {"ids": sorted(set(conversation_ids))})
    return {row.conversation_id: row for row in rows}


PREVIEW_COLUMNS = (
    Message.id,
    Message.workspace_id,
    Message.conversation_id,
    Message.contact_id,
    Message.direction,
    Message.type,
    Message.body_enc,
    Message.reaction_enc,
    Message.revoked_at,
)


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
