"""Conversations: at most one unresolved (open or pending) per contact and number.

An inbound message finds or opens the conversation, moves a pending one back to open and
advances the 24-hour customer-service window (``last_inbound_at``: Meta's timestamp of the
customer's newest message; system notices do not count).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.conversations import paging
from connectx.conversations import repository as repo
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput
from connectx.models.conversation import STATUSES, Conversation
from connectx.realtime import publish as realtime

if TYPE_CHECKING:
    from connectx.contacts.service import ContactView

WINDOW = timedelta(hours=24)


def window_expires_at(conversation: Conversation) -> datetime | None:
    if conversation.last_inbound_at is None:
        return None
    return conversation.last_inbound_at + WINDOW


def window_open(conversation: Conversation, now: datetime | None = None) -> bool:
    """May any message (not only a template) be sent now?"""
    expires = window_expires_at(conversation)
    return expires is not None and (now or clock.now()) < expires


class Conversations:
    """Conversation upkeep inside one transaction (cached per batch; timestamps flushed with
    the batch)."""

    def __init__(self, db: AsyncSession, *, guarded: bool = True) -> None:
        self.db = db
        # Unguarded: the caller holds the contacts' locks (the processor), so no concurrent
        # transaction can open the same conversation and no savepoint is needed.
        self.guarded = guarded
        self._open: dict[tuple[int, int], Conversation] = {}
        self._absent: set[tuple[int, int]] = set()
        self.touched: dict[int, Conversation] = {}  # record_message's, for write_activity
        self.opened: list[Conversation] = []  # created by this object (not found, not raced)

    async def prefetch(self, contact_ids: list[int], channel_ids: list[int]) -> None:
        """Load the unresolved conversations of these contacts on these numbers in one query."""
        if not contact_ids or not channel_ids:
            return
        found = await repo.unresolved_many(self.db, contact_ids, channel_ids)
        for conversation in found:
            self._open[(conversation.contact_id, conversation.channel_id)] = conversation
        for contact_id in contact_ids:
            for channel_id in channel_ids:
                if (contact_id, channel_id) not in self._open:
                    self._absent.add((contact_id, channel_id))

    async def open_for(
        self, workspace_id: int, channel_id: int, contact_id: int, at: datetime
    ) -> Conversation:
        key = (contact_id, channel_id)
        conversation = self._open.get(key)
        if conversation is not None and conversation.status != "resolved":
            return conversation
        if key in self._absent:
            conversation = None
        else:
            conversation = await repo.unresolved(self.db, contact_id, channel_id)
        if conversation is None:
            now = clock.now()
            conversation = Conversation(
                workspace_id=workspace_id,
                channel_id=channel_id,
                contact_id=contact_id,
                status="open",
                opened_at=at,
                last_message_at=at,
                created_at=now,
                updated_at=now,
            )
            if not self.guarded:
                await repo.add(self.db, conversation)
                self.opened.append(conversation)
            else:
                try:
                    async with self.db.begin_nested():
                        await repo.add(self.db, conversation)
                    self.opened.append(conversation)
                except IntegrityError:  # opened by a concurrent transaction
                    conversation = await repo.unresolved(self.db, contact_id, channel_id)
                    assert conversation is not None
        self._absent.discard(key)
        self._open[key] = conversation
        return conversation

    def record_message(
        self, conversation: Conversation, at: datetime, *, inbound: bool, opens_window: bool
    ) -> None:
        """Move the conversation's activity forward, in memory only, without marking it
        changed: :meth:`write_activity` writes every conversation recorded so, in one statement
        (the ORM's flush of each changed conversation and contact cost ~14 % of processing's
        instructions, bench/processing.py --instructions, session 25)."""
        if at > conversation.last_message_at:
            set_committed_value(conversation, "last_message_at", at)
        if inbound and opens_window:
            if conversation.last_inbound_at is None or at > conversation.last_inbound_at:
                set_committed_value(conversation, "last_inbound_at", at)
            if conversation.status == "pending":
                set_committed_value(conversation, "status", "open")
        set_committed_value(conversation, "updated_at", clock.now())
        self.touched[conversation.id] = conversation

    async def write_activity(self) -> None:
        """Write what :meth:`record_message` recorded (before anything reads it from the
        database: the processor calls it before the batch's flush)."""
        touched, self.touched = self.touched, {}
        await repo.write_activity(self.db, list(touched.values()))

    def forget_contact(self, contact_id: int) -> None:
        for key in [k for k in self._open if k[0] == contact_id]:
            del self._open[key]
        self._absent = {k for k in self._absent if k[0] != contact_id}


async def reassign_contact(db: AsyncSession, src_contact: int, dst_contact: int) -> None:
    """Move ``src_contact``'s conversations to ``dst_contact`` (merging two unresolved ones on the
    same number into ``dst``'s)."""
    from connectx.messages import repository as messages

    for conversation in await repo.of_contact(db, src_contact):
        if conversation.status != "resolved":
            target = await repo.unresolved(db, dst_contact, conversation.channel_id)
            if target is not None:
                await messages.move_to_conversation(db, conversation.id, target.id)
                target.last_message_at = max(target.last_message_at, conversation.last_message_at)
                if conversation.last_inbound_at is not None and (
                    target.last_inbound_at is None
                    or conversation.last_inbound_at > target.last_inbound_at
                ):
                    target.last_inbound_at = conversation.last_inbound_at
                target.opened_at = min(target.opened_at, conversation.opened_at)
                await db.delete(conversation)
                await db.flush()
                continue
        conversation.contact_id = dst_contact
        await db.flush()


async def list_page(
    db: AsyncSession,
    workspace_id: int,
    *,
    status: str | None,
    channel_id: int | None,
    contact_id: int | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Conversation]:
    return await repo.page(
        db,
        workspace_id,
        status=status,
        channel_id=channel_id,
        contact_id=contact_id,
        after=after,
        limit=limit,
    )


async def get(db: AsyncSession, workspace_id: int, conversation_id: int) -> Conversation:
    return await repo.get(db, workspace_id, conversation_id)


async def list_for(
    db: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    channel_id: int | None,
    contact_id: int | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[tuple[Conversation, ContactView | None]], str | None]:
    """A page of conversations, most recent activity first, with who each is with."""
    from connectx.contacts import service as contacts

    assert principal.workspace_id is not None
    ws = principal.workspace_id
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status is one of {', '.join(STATUSES)}.", field="status")
    after = paging.decode_time_id(cursor) if cursor else None
    rows = await repo.page(
        db,
        ws,
        status=status,
        channel_id=channel_id,
        contact_id=contact_id,
        after=after,
        limit=paging.check_limit(limit) + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    people = await contacts.names(db, ws, sorted({c.contact_id for c in rows}))
    if rows:
        await audit.record_view(
            db,
            actor=principal.actor,
            action="conversations.viewed",
            workspace_id=ws,
            ip=principal.ip,
            data={"contacts": sorted(people)},
        )
    cursor_out = paging.encode(rows[-1].last_message_at, rows[-1].id) if more else None
    return [(c, people.get(c.contact_id)) for c in rows], cursor_out


async def get_for(
    db: AsyncSession, principal: Principal, conversation_id: int
) -> tuple[Conversation, ContactView | None]:
    from connectx.contacts import service as contacts

    assert principal.workspace_id is not None
    conversation = await repo.get(db, principal.workspace_id, conversation_id)
    people = await contacts.names(db, principal.workspace_id, [conversation.contact_id])
    await audit.record_view(
        db,
        actor=principal.actor,
        action="conversation.viewed",
        subject=f"contact:{conversation.contact_id}",
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data={"conversation": conversation.id},
    )
    return conversation, people.get(conversation.contact_id)


async def set_status(
    db: AsyncSession, principal: Principal, conversation_id: int, status: str
) -> tuple[Conversation, ContactView | None]:
    """Move a conversation to open, pending or resolved. A new inbound message reopens a
    pending one; after ``resolved`` the next inbound message starts a new conversation."""
    from connectx.contacts import service as contacts

    assert principal.workspace_id is not None
    ws = principal.workspace_id
    if status not in STATUSES:
        raise InvalidInput(f"status is one of {', '.join(STATUSES)}.", field="status")
    conversation = await repo.get(db, ws, conversation_id)
    before = conversation.status
    if status != before:
        if before == "resolved":
            other = await repo.unresolved(db, conversation.contact_id, conversation.channel_id)
            if other is not None:
                raise Conflict(
                    f"This contact already has an unresolved conversation on this number "
                    f"({other.id}); continue there, or resolve it first.",
                    conversation=other.id,
                )
        now = clock.now()
        conversation.status = status
        conversation.resolved_at = now if status == "resolved" else None
        conversation.snoozed_until = None  # a person decided: no wake-up later
        conversation.updated_at = now
        try:
            async with db.begin_nested():
                await db.flush()
        except IntegrityError:
            raise Conflict(
                "Another conversation with this contact on this number was opened meanwhile; "
                "reload and continue there."
            ) from None
        await audit.record(
            db,
            actor=principal.actor,
            action="conversation.status_changed",
            subject=f"contact:{conversation.contact_id}",
            workspace_id=ws,
            ip=principal.ip,
            data={"conversation": conversation.id, "from": before, "to": status},
        )
        realtime.after_commit(
            db, ws, "conversation.status", conversation_id=conversation.id, status=status
        )
    people = await contacts.names(db, ws, [conversation.contact_id])
    return conversation, people.get(conversation.contact_id)
