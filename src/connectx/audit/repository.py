"""SQL for the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import scoped
from connectx.models.audit import AuditEvent

_CHAIN_LOCK = 7_301_001  # PostgreSQL advisory-lock key serialising appends to the chain


async def lock_chain(db: AsyncSession) -> None:
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})


async def last_hash(db: AsyncSession) -> str | None:
    stmt = select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    return (await db.execute(stmt)).scalar_one_or_none()


async def head(db: AsyncSession) -> AuditEvent | None:
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
    return (await db.execute(stmt)).scalar_one_or_none()


_HEAD = "audit_chain_head"


async def chain_head(db: AsyncSession) -> str | None:
    """The newest entry's hash, the chain locked until the transaction ends. Read once per
    transaction: after this transaction appended an entry, that entry is the head (nobody else
    can append while the lock is held), so a page that records three entries locks and reads
    the head once. An entry undone by a savepoint's rollback, a commit (the lock is gone) or a
    removal of entries (:func:`forget_head`) sends the next append back to the database."""
    cached = db.info.get(_HEAD)
    if cached is not None:
        transaction, event = cached
        if transaction is db.sync_session.get_transaction() and inspect(event).persistent:
            return str(event.hash)
    await lock_chain(db)
    return await last_hash(db)


def forget_head(db: AsyncSession) -> None:
    db.info.pop(_HEAD, None)


async def add(db: AsyncSession, event: AuditEvent) -> None:
    db.add(event)
    await db.flush()
    db.info[_HEAD] = (db.sync_session.get_transaction(), event)


async def stream(db: AsyncSession, batch: int = 1000) -> AsyncIterator[AuditEvent]:
    last_id = 0
    while True:
        stmt = (
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        )
        rows = list((await db.execute(stmt)).scalars())
        if not rows:
            return
        for row in rows:
            yield row
        last_id = rows[-1].id


async def data_of_action(db: AsyncSession, action: str) -> list[dict[str, Any]]:
    stmt = select(AuditEvent.data).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return [dict(d or {}) for d in (await db.execute(stmt)).scalars()]


async def for_workspace(
    db: AsyncSession, workspace_id: int, before_id: int | None, limit: int
) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())


def search_query(
    workspace_id: int,
    *,
    actor: str | None = None,
    subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
) -> Select[Any]:
    """A workspace's events matching the filters, newest first. ``action`` ending in ``*`` is a
    prefix (``contact.*``)."""
    stmt = scoped(AuditEvent, workspace_id)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if subject:
        stmt = stmt.where(AuditEvent.subject == subject)
    if action:
        if action.endswith("*"):
            stmt = stmt.where(AuditEvent.action.startswith(action[:-1], autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == action)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    return stmt.order_by(AuditEvent.id.desc())


async def search(db: AsyncSession, stmt: Select[Any], limit: int) -> list[AuditEvent]:
    return list((await db.execute(stmt.limit(limit))).scalars())
