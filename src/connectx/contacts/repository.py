"""SQL for contacts and their preference events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import get_in_workspace, scoped
from connectx.kit.upsert import insert_ignore
from connectx.models.contact import Contact, ContactPreferenceEvent


async def by_index(
    db: AsyncSession, workspace_id: int, phone_index: bytes | None, bsuid_index: bytes | None
) -> tuple[Contact | None, Contact | None]:
    """(the contact with this BSUID, the contact with this phone) in one query."""
    conds = []
    if bsuid_index is not None:
        conds.append(Contact.bsuid_index == bsuid_index)
    if phone_index is not None:
        conds.append(Contact.phone_index == phone_index)
    if not conds:
        return None, None
    rows = list((await db.execute(scoped(Contact, workspace_id).where(or_(*conds)))).scalars())
    by_b = next((c for c in rows if bsuid_index and c.bsuid_index == bsuid_index), None)
    by_p = next((c for c in rows if phone_index and c.phone_index == phone_index), None)
    return by_b, by_p


async def add(db: AsyncSession, contact: Contact) -> None:
    db.add(contact)
    await db.flush()


async def get(db: AsyncSession, workspace_id: int, contact_id: int) -> Contact:
    return await get_in_workspace(db, Contact, contact_id, workspace_id, "contact")


async def get_many(db: AsyncSession, workspace_id: int, ids: list[int]) -> dict[int, Contact]:
    if not ids:
        return {}
    stmt = scoped(Contact, workspace_id).where(Contact.id.in_(set(ids)))
    return {c.id: c for c in (await db.execute(stmt)).scalars()}


async def delete_contact(db: AsyncSession, contact_id: int) -> None:
    await db.execute(delete(Contact).where(Contact.id == contact_id))


async def touch_inbound(db: AsyncSession, contact_id: int, at: datetime) -> None:
    """Move ``last_inbound_at`` forward (never back)."""
    await db.execute(
        update(Contact)
        .where(
            Contact.id == contact_id,
            or_(Contact.last_inbound_at.is_(None), Contact.last_inbound_at < at),
        )
        .values(last_inbound_at=at)
    )


def page_query(
    workspace_id: int, phone_index: bytes | None, after_id: int | None, limit: int
) -> Select[Any]:
    stmt = scoped(Contact, workspace_id)
    if phone_index is not None:
        stmt = stmt.where(Contact.phone_index == phone_index)
    if after_id is not None:
        stmt = stmt.where(Contact.id < after_id)
    return stmt.order_by(Contact.id.desc()).limit(limit)


async def page(
    db: AsyncSession,
    workspace_id: int,
    phone_index: bytes | None,
    before_id: int | None,
    limit: int,
) -> list[Contact]:
    return list(
        (await db.execute(page_query(workspace_id, phone_index, before_id, limit))).scalars()
    )


async def add_preference_event(db: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert unless the same event was recorded before; the new id, or None for a repeat."""
    stmt = insert_ignore(db, ContactPreferenceEvent, values).returning(ContactPreferenceEvent.id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def move_preference_events(db: AsyncSession, src: int, dst: int) -> None:
    await db.execute(
        update(ContactPreferenceEvent)
        .where(ContactPreferenceEvent.contact_id == src)
        .values(contact_id=dst)
    )
