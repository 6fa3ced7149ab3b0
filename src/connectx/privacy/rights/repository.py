"""SQL of the rights executors: a subject's rows table by table, restrictions, exports and
recipient notices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, delete, func, or_, select, update
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


async def workspaces_of_contacts(db: AsyncSession, ids: list[int]) -> dict[int, int]:
    from connectx.models.contact import Contact

    rows = await db.execute(select(Contact.id, Contact.workspace_id).where(Contact.id.in_(ids)))
    return {int(c): int(w) for c, w in rows.all()}


async def active_holds(db: AsyncSession, subject: Subject) -> list[int]:
    """Ids of the legal holds in force on the subject or on their workspace."""
    from sqlalchemy import or_

    from connectx.models.retention import LegalHold

    cond = LegalHold.subject == subject.ref
    if subject.workspace_id is not None:
        cond = or_(cond, LegalHold.workspace_id == subject.workspace_id)
    stmt = select(LegalHold.id).where(cond, LegalHold.released_at.is_(None)).order_by(LegalHold.id)
    return [int(i) for i in (await db.execute(stmt)).scalars()]


async def any_active_hold(db: AsyncSession) -> bool:
    """Whether any legal hold (on anyone, any workspace) is in force."""
    from connectx.models.retention import LegalHold

    stmt = select(LegalHold.id).where(LegalHold.released_at.is_(None)).limit(1)
    return (await db.execute(stmt)).first() is not None


async def exports_of(db: AsyncSession, subject: Subject) -> list[PrivacyExport]:
    stmt = select(PrivacyExport).where(
        PrivacyExport.subject == subject.ref, PrivacyExport.storage_key.is_not(None)
    )
    if subject.workspace_id is not None:
        stmt = stmt.where(PrivacyExport.workspace_id == subject.workspace_id)
    return list((await db.execute(stmt)).scalars())


async def sole_owner_of(db: AsyncSession, user_id: int) -> list[int]:
    """Workspaces where ``user_id`` is the only owner."""
    from sqlalchemy import func

    from connectx.models.workspace import Membership

    owners = (
        select(Membership.workspace_id)
        .where(Membership.role == "owner")
        .group_by(Membership.workspace_id)
        .having(func.count() == 1)
    )
    stmt = select(Membership.workspace_id).where(
        Membership.user_id == user_id,
        Membership.role == "owner",
        Membership.workspace_id.in_(owners),
    )
    return sorted(int(w) for w in (await db.execute(stmt)).scalars())


async def processed_webhook_bodies(db: AsyncSession, after_id: int, limit: int) -> list[Any]:
    """Processed raw webhooks still holding their sealed body, in id order (a page)."""
    from connectx.models.webhook_event import WebhookEvent

    stmt = (
        select(WebhookEvent.id, WebhookEvent.received_at, WebhookEvent.body_enc)
        .where(
            WebhookEvent.id > after_id,
            WebhookEvent.status.in_(("processed", "malformed", "failed")),
            WebhookEvent.body_enc.is_not(None),
        )
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).all())


async def clear_webhook_bodies(db: AsyncSession, ids: list[int]) -> int:
    from connectx.models.webhook_event import WebhookEvent

    if not ids:
        return 0
    result = await db.execute(
        update(WebhookEvent).where(WebhookEvent.id.in_(ids)).values(body_enc=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- recipient notices -------------------------------------------------------------------------


async def recipient_endpoints(db: AsyncSession) -> list[Any]:
    from connectx.models.privacy_rights import RecipientEndpoint

    stmt = select(RecipientEndpoint).order_by(RecipientEndpoint.recipient_id)
    return list((await db.execute(stmt)).scalars())


async def recipient_endpoint(db: AsyncSession, recipient_id: str) -> Any:
    from connectx.models.privacy_rights import RecipientEndpoint

    return await db.get(RecipientEndpoint, recipient_id)


async def notice(db: AsyncSession, notice_id: int) -> Any:
    from connectx.models.privacy_rights import RecipientNotice

    stmt = select(RecipientNotice).where(RecipientNotice.id == notice_id).with_for_update()
    return (await db.execute(stmt)).scalar_one_or_none()


async def notice_by_ack(db: AsyncSession, ack_hash: bytes) -> Any:
    from connectx.models.privacy_rights import RecipientNotice

    stmt = select(RecipientNotice).where(RecipientNotice.ack_hash == ack_hash).with_for_update()
    return (await db.execute(stmt)).scalar_one_or_none()


async def pending_sends(db: AsyncSession, workspace_id: int, contact_id: int) -> list[Any]:
    from connectx.models.outbox import OutboxMessage

    stmt = select(OutboxMessage).where(
        OutboxMessage.workspace_id == workspace_id,
        OutboxMessage.contact_id == contact_id,
        OutboxMessage.status == "pending",
    )
    return list((await db.execute(stmt)).scalars())


# -- the inventory sweep -----------------------------------------------------------------------


async def delete_rows(db: AsyncSession, table: Table, where: ColumnElement[bool]) -> int:
    result = await db.execute(delete(table).where(where))
    return int(getattr(result, "rowcount", 0) or 0)


async def clear_columns(
    db: AsyncSession, table: Table, where: ColumnElement[bool], columns: Sequence[str]
) -> int:
    result = await db.execute(
        update(table)
        .where(where, or_(*(table.c[c].is_not(None) for c in columns)))
        .values({c: None for c in columns})
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def count_rows(db: AsyncSession, table: Table, where: ColumnElement[bool]) -> int:
    return int(
        (await db.execute(select(func.count()).select_from(table).where(where))).scalar_one()
    )


async def webhook_bodies_between(
    db: AsyncSession,
    start: datetime,
    end: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Any]:
    """Raw webhooks received in [start, end) still holding a sealed body, any status: a page in
    (received_at, id) order after ``after`` (the last row of the previous page), read through
    ``ix_webhook_events_received_at``."""
    from connectx.models.webhook_event import WebhookEvent

    at = WebhookEvent.received_at
    stmt = select(WebhookEvent.id, at, WebhookEvent.body_enc).where(
        at >= (start if after is None else after[0]),  # the index range starts at the cursor
        at < end,
        WebhookEvent.body_enc.is_not(None),
    )
    if after is not None:
        stmt = stmt.where(or_(at > after[0], WebhookEvent.id > after[1]))
    stmt = stmt.order_by(WebhookEvent.received_at, WebhookEvent.id).limit(limit)
    return list((await db.execute(stmt)).all())


def live_body_probe(start: datetime, end: datetime) -> Select[Any]:
    """The first raw webhook received in [start, end) still holding a sealed body. Ordered by
    the index's columns: without the ORDER BY, PostgreSQL takes LIMIT 1 as "the first match of
    a sequential scan" and reads every older event before a live day's first (docs/retention.md)."""
    from connectx.models.webhook_event import WebhookEvent

    return (
        select(WebhookEvent.id)
        .where(
            WebhookEvent.received_at >= start,
            WebhookEvent.received_at < end,
            WebhookEvent.body_enc.is_not(None),
        )
        .order_by(WebhookEvent.received_at, WebhookEvent.id)
        .limit(1)
    )


async def webhook_body_between(db: AsyncSession, start: datetime, end: datetime) -> bool:
    """Whether any raw webhook received in [start, end) still holds a sealed body (one probe of
    ``ix_webhook_events_received_at``)."""
    return (await db.execute(live_body_probe(start, end))).first() is not None


async def set_webhook_body(db: AsyncSession, event_id: int, old: bytes, new: bytes) -> bool:
    """Replace a raw webhook's sealed body if it is still ``old`` (a compare-and-set)."""
    from connectx.models.webhook_event import WebhookEvent

    result = await db.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.body_enc == old)
        .values(body_enc=new)
    )
    return bool(getattr(result, "rowcount", 0))
