"""SQL of the rights executors: a subject's rows table by table, restrictions, exports and
recipient notices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.media import STORED, MediaFile
from connectx.models.privacy_rights import PrivacyExport, ProcessingRestriction
from connectx.privacy.rights.base import Subject
from connectx.privacy.rights.records import Found


async def rows_of(db: AsyncSession, found: Found, subject: Subject) -> list[dict[str, Any]]:
    """Every row of ``found.table`` linked to ``subject`` (in its workspace), oldest first."""
    table = found.table
    order = list(table.primary_key.columns)
    stmt = select(table).where(found.where(subject)).order_by(*order)
    return [dict(r._mapping) for r in (await db.execute(stmt)).all()]


async def stored_media(db: AsyncSession, subject: Subject) -> list[MediaFile]:
    stmt = (
        select(MediaFile)
        .where(
            MediaFile.workspace_id == subject.workspace_id,
            MediaFile.contact_id == subject.id,
            MediaFile.state == STORED,
            MediaFile.storage_key.is_not(None),
        )
        .order_by(MediaFile.id)
    )
    return list((await db.execute(stmt)).scalars())


# -- restrictions ------------------------------------------------------------------------------


async def active_restriction(db: AsyncSession, subject: str) -> ProcessingRestriction | None:
    stmt = select(ProcessingRestriction).where(
        ProcessingRestriction.subject == subject, ProcessingRestriction.lifted_at.is_(None)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def restricted_among(db: AsyncSession, subjects: Sequence[str]) -> set[str]:
    if not subjects:
        return set()
    stmt = select(ProcessingRestriction.subject).where(
        ProcessingRestriction.subject.in_(set(subjects)),
        ProcessingRestriction.lifted_at.is_(None),
    )
    return set((await db.execute(stmt)).scalars())


async def add(db: AsyncSession, row: Any) -> None:
    db.add(row)
    await db.flush()


# -- exports -----------------------------------------------------------------------------------


async def export_by_link(db: AsyncSession, link_hash: bytes) -> PrivacyExport | None:
    stmt = select(PrivacyExport).where(PrivacyExport.link_hash == link_hash).with_for_update()
    return (await db.execute(stmt)).scalar_one_or_none()


async def export_by_id(db: AsyncSession, export_id: int) -> PrivacyExport | None:
    return await db.get(PrivacyExport, export_id)


async def consume_export(db: AsyncSession, export_id: int, link_hash: bytes, at: datetime) -> bool:
    """Mark an export downloaded, once: False when another request used the link first."""
    stmt = (
        update(PrivacyExport)
        .where(
            PrivacyExport.id == export_id,
            PrivacyExport.link_hash == link_hash,
            PrivacyExport.downloaded_at.is_(None),
        )
        .values(downloaded_at=at)
    )
    result = await db.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def cancel_pending_sends(db: AsyncSession, subject: Subject) -> int:
    """Messages queued for a contact and not yet taken by the sender: failed, never sent."""
    from connectx.kit import clock
    from connectx.models.message import Message
    from connectx.models.outbox import OutboxMessage

    pending = (
        OutboxMessage.workspace_id == subject.workspace_id,
        OutboxMessage.contact_id == subject.id,
        OutboxMessage.status == "pending",
    )
    queued = select(OutboxMessage.message_id).where(*pending)
    await db.execute(
        update(Message)
        .where(Message.id.in_(queued), Message.status == "queued")
        .values(status="failed", status_rank=9, error_title="restricted at the person's request")
    )
    stmt = (
        update(OutboxMessage)
        .where(*pending)
        .values(
            status="failed",
            error_title="restricted at the person's request",
            payload_enc=None,
            updated_at=clock.now(),
        )
    )
    result = await db.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
