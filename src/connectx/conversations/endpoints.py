"""``/api/v1/conversations``: what customers sent, for the workspace's people and API keys.

Readable by owners, admins and agents, and by API keys with the ``read`` scope. Analysts see
reports, not message content (the policy's purpose limitation).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.contacts.service import ContactView
from connectx.conversations import service
from connectx.conversations.schemas import (
    ContactRef,
    ConversationOut,
    ConversationPage,
    ConversationUpdate,
    MessageOut,
    MessagePage,
)
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.messages import service as messages
from connectx.models.conversation import Conversation
from connectx.workspaces.access import allow

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])

readers = allow("read", "owner", "admin", "agent")
writers = allow("write", "owner", "admin", "agent")


def to_out(conversation: Conversation, contact: ContactView | None) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        status=conversation.status,
        channel_id=conversation.channel_id,
        contact=ContactRef(
            id=conversation.contact_id,
            name=contact.name if contact else None,
            phone=contact.phone if contact else None,
        ),
        opened_at=conversation.opened_at,
        last_message_at=conversation.last_message_at,
        last_inbound_at=conversation.last_inbound_at,
        window_expires_at=service.window_expires_at(conversation),
        window_open=service.window_open(conversation),
        resolved_at=conversation.resolved_at,
    )


@router.get("", response_model=ConversationPage, summary="Conversations, most recent first")
async def list_conversations(
    status: str | None = Query(None, description="open, pending or resolved"),
    channel: int | None = Query(None, description="Only this channel (number) id."),
    contact: int | None = Query(None, description="Only this contact id."),
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
    limit: int = Query(50, description="1 to 200."),
    principal: Principal = Depends(readers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ConversationPage:
    rows, next_cursor = await service.list_for(
        db,
        principal,
        status=status,
        channel_id=channel,
        contact_id=contact,
        cursor=cursor,
        limit=limit,
    )
    return ConversationPage(items=[to_out(c, who) for c, who in rows], next_cursor=next_cursor)


@router.get("/{conversation_id}", response_model=ConversationOut, summary="One conversation")
async def get_conversation(
    conversation_id: int,
    principal: Principal = Depends(readers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ConversationOut:
    conversation, who = await service.get_for(db, principal, conversation_id)
    return to_out(conversation, who)


@router.patch(
    "/{conversation_id}",
    response_model=ConversationOut,
    dependencies=[Depends(csrf_protect)],
    summary="Set a conversation's status (open, pending, resolved)",
)
async def update_conversation(
    conversation_id: int,
    body: ConversationUpdate,
    principal: Principal = Depends(writers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> ConversationOut:
    conversation, who = await service.set_status(db, principal, conversation_id, body.status)
    return to_out(conversation, who)


@router.get(
    "/{conversation_id}/messages",
    response_model=MessagePage,
    summary="A conversation's messages, newest first",
)
async def list_messages(
    conversation_id: int,
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
    limit: int = Query(50, description="1 to 200."),
    principal: Principal = Depends(readers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> MessagePage:
    views, next_cursor = await messages.list_for(
        db, principal, conversation_id, cursor=cursor, limit=limit
    )
    return MessagePage(
        items=[MessageOut.model_validate(v, from_attributes=True) for v in views],
        next_cursor=next_cursor,
    )
