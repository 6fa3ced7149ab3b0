"""Read markers: how far each member has read each conversation, and what is unread.

A conversation is unread for a member when its newest customer message (``last_inbound_at``) is
newer than the member's marker. Marking read moves the marker to the conversation's newest
customer message (never back). Markers are the member's own screen state, not data about the
customer: they are not audited (opening the conversation is).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.inbox import repository as repo
from connectx.kit import clock
from connectx.kit.errors import Forbidden
from connectx.realtime import publish as realtime


def _member(principal: Principal) -> tuple[int, int]:
    if principal.user_id is None or principal.workspace_id is None:
        raise Forbidden("Read markers belong to signed-in members, not API keys.")
    return principal.workspace_id, principal.user_id


async def mark_read(db: AsyncSession, principal: Principal, conversation_id: int) -> None:
    ws, user_id = _member(principal)
    conversation = await repo.conversation(db, ws, conversation_id)
    upto = conversation.last_inbound_at or conversation.last_message_at
    now = clock.now()
    await repo.upsert_read_marker(
        db,
        {
            "workspace_id": ws,
            "conversation_id": conversation.id,
            "user_id": user_id,
            "read_upto": upto,
            "updated_at": now,
        },
    )
    realtime.after_commit(
        db, ws, "conversation.read", user_id=user_id, conversation_id=conversation.id
    )


async def counts(db: AsyncSession, principal: Principal) -> dict[str, int]:
    ws, user_id = _member(principal)
    return await repo.unread_counts(db, ws, user_id)
