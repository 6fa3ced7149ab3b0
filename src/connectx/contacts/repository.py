"""SQL for contacts and their preference events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.membership import one_of
from connectx.kit.tenancy import get_in_workspace, scoped
from connectx.kit.upsert import insert_ignore
from connectx.models.contact import Contact, ContactPreferenceEvent


async def by_indexes(
    db: AsyncSession, workspace_id: int, phone_indexes: list[bytes], bsuid_indexes: list[bytes]
) -> list[Contact]:
    """The workspace's contacts holding any of these phone or BSUID keyed hashes."""
    conds = []
    if phone_indexes:
        conds.append(one_of(db, Contact.phone_index, set(phone_indexes)))
    if bsuid_indexes:
        conds.append(one_of(db, Contact.bsuid_index, set(bsuid_indexes)))
    if not conds:
        return []
    return list((await db.execute(scoped(Contact, workspace_id).where(or_(*conds)))).scalars())


async def add(db: AsyncSession, contact: Contact) -> None:
    db.add(contact)
    await db.flush()


async def reserve_ids(db: AsyncSession, n: int) -> list[int]:
    """``n`` contact ids no other row will get (for contacts about to be created, so their data
    keys can be made in one go first). PostgreSQL: the sequence. SQLite (the caller's
    transaction holds the write lock): the AUTOINCREMENT counter is moved past them, so an id
    reserved and not used is a gap, never handed out again once this transaction commits."""
    if n <= 0:
        return []
    if db.get_bind().dialect.name == "postgresql":
        stmt = text(
            "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) FROM generate_series(1, :n)"
        )
        return sorted(int(i) for i in (await db.execute(stmt, {"n": n})).scalars())
    top = (
        await db.execute(
            text(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'contacts'), 0),"
                " coalesce((SELECT max(id) FROM contacts), 0))"
            )
        )
    ).scalar_one()
    first, last = int(top) + 1, int(top) + n
    moved = await db.execute(
        text("UPDATE sqlite_sequence SET seq = :last WHERE name = 'contacts'"), {"last": last}
    )
    if not getattr(moved, "rowcount", 0):
        await db.execute(
            text("INSERT INTO sqlite_sequence (name, seq) VALUES ('contacts', :last)"),
            {"last": last},
        )
    return list(range(first, last + 1))


async def still_reserved(db: AsyncSession, ids: list[int]) -> list[int]:
    """Those of ``ids`` (reserved earlier by this process) that no row has and that the id
    counter is still past (a restored backup or an emptied table may have moved it back)."""
    if not ids:
        return []
    if db.get_bind().dialect.name == "postgresql":
        stmt = text(
            "SELECT pg_sequence_last_value("
            "CAST(pg_get_serial_sequence('contacts', 'id') AS regclass))"
        )
    else:
        stmt = text("SELECT seq FROM sqlite_sequence WHERE name = 'contacts'")
    top = int((await db.execute(stmt)).scalar_one_or_none() or 0)
    taken = set((await db.execute(select(Contact.id).where(Contact.id.in_(ids)))).scalars())
    return [i for i in ids if i <= top and i not in taken]


async def get(db: AsyncSession, workspace_id: int, contact_id: int) -> Contact:
    return await get_in_workspace(db, Contact, contact_id, workspace_id, "contact")


async def get_many(db: AsyncSession, workspace_id: int, ids: list[int]) -> dict[int, Contact]:
    if not ids:
        return {}
    stmt = scoped(Contact, workspace_id).where(Contact.id.in_(set(ids)))
    return {c.id: c for c in (await db.execute(stmt)).scalars()}


async def delete_contact(db: AsyncSession, contact_id: int) -> None:
    await db.execute(delete(Contact).where(Contact.id == contact_id))


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


_TOUCH_INBOUND = (
    update(Contact.__table__)  # type: ignore[arg-type]
    .where(Contact.__table__.c.id == bindparam("c_id"))
    .values(last_inbound_at=bindparam("c_inbound"))
)


async def write_last_inbound(db: AsyncSession, contacts: list[Contact]) -> None:
    """Write these contacts' ``last_inbound_at`` as it is in memory: one executemany."""
    if not contacts:
        return
    conn = await db.connection()
    await conn.execute(
        _TOUCH_INBOUND, [{"c_id": c.id, "c_inbound": c.last_inbound_at} for c in contacts]
    )
