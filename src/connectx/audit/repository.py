"""SQL for the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, inspect, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from connectx.kit.tenancy import scoped
from connectx.models.audit import AuditEvent

_CHAIN_LOCK = 7_301_001  # PostgreSQL advisory-lock key serialising appends to the chain


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})


async def lock_chain(db: AsyncSession) -> None:
    await db.run_sync(_lock_chain)


async def head(db: AsyncSession) -> AuditEvent | None:
    await write_pending(db)
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
    return (await db.execute(stmt)).scalar_one_or_none()


_HEAD = "audit_chain_head"
_PENDING = "audit_pending"
_LAST_HASH = select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)


def chain_head_sync(session: Session) -> str | None:
    """The newest entry's hash, the chain locked until the transaction ends. Read once per
    transaction: after this transaction appended an entry, that entry is the head (nobody else
    can append while the lock is held), so a page that records three entries locks and reads
    the head once. An entry undone by a savepoint's rollback, a commit (the lock is gone) or a
    removal of entries (:func:`forget_head`) sends the next append back to the database."""
    cached = session.info.get(_HEAD)
    if cached is not None:
        transaction, event = cached
        if transaction is session.get_transaction() and inspect(event).persistent:
            return str(event.hash)
    _lock_chain(session)
    return session.execute(_LAST_HASH).scalar_one_or_none()


def forget_head(db: AsyncSession) -> None:
    db.info.pop(_HEAD, None)


def add_all_sync(session: Session, events: list[AuditEvent]) -> None:
    """Append ``events`` (already chained, in order) in one flush: one INSERT for all of them
    (the ORM's multi-row insert keeps their order, so their ids follow the chain)."""
    session.add_all(events)
    session.flush()
    session.info[_HEAD] = (session.get_transaction(), events[-1])


def defer(db: AsyncSession, event: AuditEvent, key: bytes) -> None:
    """Keep ``event`` to be chained and written with this transaction's other deferred entries
    (:func:`write_pending_sync`, at the latest when the transaction commits). It belongs to the
    innermost transaction open now: a savepoint rolled back takes it with it."""
    session = db.sync_session
    within = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((event, key, within))


def pending_events(session: Session) -> list[tuple[AuditEvent, bytes]]:
    return [(event, key) for event, key, _ in session.info.pop(_PENDING, None) or []]


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@sa_event.listens_for(Session, "after_soft_rollback")
def _undo_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    """Entries deferred in a transaction or savepoint that rolled back are dropped with it."""
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [p for p in pending if not _inside(p[2], previous_transaction)]


async def write_pending(db: AsyncSession) -> None:
    """Write the deferred entries now (before reading the log, or before a later entry)."""
    if db.info.get(_PENDING):
        from connectx.audit.service import write_pending_sync

        await db.run_sync(write_pending_sync)


async def stream(db: AsyncSession, batch: int = 1000) -> AsyncIterator[AuditEvent]:
    await write_pending(db)
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
    await write_pending(db)
    stmt = select(AuditEvent.data).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return [dict(d or {}) for d in (await db.execute(stmt)).scalars()]


async def for_workspace(
    db: AsyncSession, workspace_id: int, before_id: int | None, limit: int
) -> list[AuditEvent]:
    await write_pending(db)
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
    await write_pending(db)
    return list((await db.execute(stmt.limit(limit))).scalars())
