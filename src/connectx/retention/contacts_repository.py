"""SQL of anonymising contacts (:mod:`connectx.retention.contacts`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.models.contact import Contact
from connectx.models.media import MediaFile
from connectx.models.message import Message
from connectx.models.outbox import OutboxMessage


async def workspaces_of(db: AsyncSession, ids: list[int]) -> dict[int, int]:
    rows = await db.execute(select(Contact.id, Contact.workspace_id).where(Contact.id.in_(ids)))
    return {int(c): int(w) for c, w in rows.all()}


async def clear_identity(db: AsyncSession, ids: list[int], columns: Sequence[str]) -> int:
    table: Any = Contact.__table__
    result = await db.execute(
        update(table)
        .where(table.c.id.in_(ids), or_(*(table.c[name].is_not(None) for name in columns)))
        .values({name: None for name in columns})
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def clear_messages(db: AsyncSession, ids: list[int], columns: Sequence[str]) -> int:
    table: Any = Message.__table__
    result = await db.execute(
        update(table)
        .where(table.c.contact_id.in_(ids), or_(*(table.c[name].is_not(None) for name in columns)))
        .values({name: None for name in columns})
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def clear_outbox(db: AsyncSession, ids: list[int]) -> int:
    result = await db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.contact_id.in_(ids), OutboxMessage.payload_enc.is_not(None))
        .values(payload_enc=None, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def clear_media(db: AsyncSession, ids: list[int]) -> list[str]:
    """Clear the media rows' file references; returns the storage keys to delete."""
    keys = [
        k
        for k in (
            await db.execute(
                select(MediaFile.storage_key).where(
                    MediaFile.contact_id.in_(ids), MediaFile.storage_key.is_not(None)
                )
            )
        ).scalars()
        if k
    ]
    await db.execute(
        update(MediaFile)
        .where(
            MediaFile.contact_id.in_(ids),
            or_(MediaFile.storage_key.is_not(None), MediaFile.sha256.is_not(None)),
        )
        .values(storage_key=None, sha256=None, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return keys
