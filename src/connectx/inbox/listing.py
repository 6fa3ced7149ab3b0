"""The inbox's conversation list: views (mine, unassigned, all), status, number, team, label,
unread, and search by the contact's number (exact, through the phone blind index) or name
(word prefixes, through :mod:`connectx.inbox.name_search`). Keyset pagination on
(last_message_at, id), served by the conversations' composite indexes (docs/inbox.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.contacts.service import ContactView, phone_index, search_phone
from connectx.conversations import paging
from connectx.conversations.service import window_expires_at, window_open
from connectx.inbox import name_search
from connectx.inbox import repository as repo
from connectx.kit.errors import InvalidInput
from connectx.models.conversation import STATUSES, Conversation
from connectx.privacy.vault import Vault

VIEWS = ("all", "mine", "unassigned")
_PHONEISH = re.compile(r"^\+?[\d\s().-]{6,}$")


@dataclass
class Row:
    conversation: Conversation
    contact: ContactView | None
    labels: list[int] = field(default_factory=list)
    unread: bool = False

    @property
    def window_open(self) -> bool:
        return window_open(self.conversation)

    @property
    def window_expires_at(self) -> datetime | None:
        return window_expires_at(self.conversation)


async def _contacts_for(db: AsyncSession, workspace_id: int, q: str) -> object:
    text = q.strip()
    if _PHONEISH.match(text):
        index = await phone_index(Vault(db), workspace_id, search_phone(text))
        found = await repo.contact_by_phone_index(db, workspace_id, index)
        return [found] if found is not None else []
    subquery = await name_search.matching_contacts(db, workspace_id, text)
    if subquery is None:
        raise InvalidInput(
            "Search for a name (two letters or more) or a number in international form.",
            field="q",
        )
    return subquery


async def page(
    db: AsyncSession,
    principal: Principal,
    *,
    view: str = "all",
    status: str | None = None,
    channel_id: int | None = None,
    team_id: int | None = None,
    label_id: int | None = None,
    q: str | None = None,
    unread: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Row], str | None]:
    from connectx.contacts import service as contacts

    assert principal.workspace_id is not None
    ws = principal.workspace_id
    if view not in VIEWS:
        raise InvalidInput(f"view is one of {', '.join(VIEWS)}.", field="view")
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status is one of {', '.join(STATUSES)}.", field="status")
    if (view == "mine" or unread) and principal.user_id is None:
        raise InvalidInput("'mine' and 'unread' need a signed-in member, not an API key.")
    if q is not None and len(q) > 100:
        raise InvalidInput("A search has at most 100 characters.", field="q")
    limit = paging.check_limit(limit)
    after = paging.decode_time_id(cursor) if cursor else None
    contact_ids = await _contacts_for(db, ws, q) if q and q.strip() else None
    if isinstance(contact_ids, list) and not contact_ids:
        return [], None
    rows = await repo.inbox_page(
        db,
        ws,
        user_id=principal.user_id,
        view=view,
        status=status,
        channel_id=channel_id,
        team_id=team_id,
        label_id=label_id,
        contact_ids=contact_ids,
        unread_only=unread,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [c.id for c in rows]
    people = await contacts.names(db, ws, sorted({c.contact_id for c in rows}))
    labels = await repo.labels_of(db, ws, ids)
    marks = (
        await repo.read_upto(db, ws, principal.user_id, ids)
        if principal.user_id is not None
        else {}
    )
    out = []
    for c in rows:
        mark = marks.get(c.id)
        is_unread = c.last_inbound_at is not None and (mark is None or c.last_inbound_at > mark)
        out.append(Row(c, people.get(c.contact_id), labels.get(c.id, []), is_unread))
    if rows:
        await audit.record_view(
            db,
            actor=principal.actor,
            action="conversations.viewed",
            workspace_id=ws,
            ip=principal.ip,
            data={"contacts": sorted(people), "search": _search_kind(q)},
        )
    next_cursor = paging.encode(rows[-1].last_message_at, rows[-1].id) if more else None
    return out, next_cursor


def _search_kind(q: str | None) -> str | None:
    if not q or not q.strip():
        return None
    return "phone" if _PHONEISH.match(q.strip()) else "name"


async def one(db: AsyncSession, principal: Principal, conversation_id: int) -> Row:
    """One conversation as the inbox shows it (for a list row refreshed by an event)."""
    from connectx.contacts import service as contacts

    assert principal.workspace_id is not None
    ws = principal.workspace_id
    c = await repo.conversation(db, ws, conversation_id)
    people = await contacts.names(db, ws, [c.contact_id])
    labels = await repo.labels_of(db, ws, [c.id])
    marks = (
        await repo.read_upto(db, ws, principal.user_id, [c.id])
        if principal.user_id is not None
        else {}
    )
    mark = marks.get(c.id)
    unread = c.last_inbound_at is not None and (mark is None or c.last_inbound_at > mark)
    await audit.record_view(
        db,
        actor=principal.actor,
        action="conversation.viewed",
        subject=f"contact:{c.contact_id}",
        workspace_id=ws,
        ip=principal.ip,
        data={"conversation": c.id},
    )
    return Row(c, people.get(c.contact_id), labels.get(c.id, []), unread)
