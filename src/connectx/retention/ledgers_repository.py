"""SQL of pruning the append-only tables (:mod:`connectx.retention.ledgers`). The only place
that deletes from ``audit_events`` or ``consent_records``; the database lets a row go only when
the permit written here first (``ledger_prunes``) covers it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from connectx.kit import clock
from connectx.models.account import User
from connectx.models.audit import AuditEvent
from connectx.models.consent import ConsentRecord
from connectx.models.contact import Contact
from connectx.models.retention import LedgerPrune, hold_covers
from connectx.retention.rules import ref


async def permit(
    db: AsyncSession,
    table: str,
    *,
    up_to_id: int,
    rows: int,
    actor: str,
    subject: str | None = None,
    last_hash: str | None = None,
) -> None:
    db.add(
        LedgerPrune(
            table_name=table,
            subject=subject,
            up_to_id=up_to_id,
            rows=rows,
            last_hash=last_hash,
            actor=actor,
            created_at=clock.now(),
        )
    )
    await db.flush()


# -- the audit log: oldest entries first --------------------------------------------------------


async def audit_stop(db: AsyncSession, cutoff: datetime) -> int | None:
    """The first entry that must stay (newer than ``cutoff``, or under a legal hold): pruning
    stops before it. None: every entry is old enough."""
    stmt = (
        select(AuditEvent.id)
        .where(
            or_(
                AuditEvent.created_at >= cutoff,
                hold_covers(AuditEvent.workspace_id, AuditEvent.subject),
            )
        )
        .order_by(AuditEvent.id)
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def audit_count(db: AsyncSession, cutoff: datetime, stop: int | None) -> tuple[int, int]:
    """(entries that may go, entries old enough but kept behind a held one)."""
    due = select(func.count()).select_from(AuditEvent)
    if stop is not None:
        due = due.where(AuditEvent.id < stop)
    held = 0
    if stop is not None:
        held_stmt = select(func.count()).where(
            AuditEvent.id >= stop, AuditEvent.created_at < cutoff
        )
        held = int((await db.execute(held_stmt)).scalar_one())
    return int((await db.execute(due)).scalar_one()), held


async def audit_oldest(db: AsyncSession, stop: int | None, limit: int) -> list[tuple[int, str]]:
    stmt = select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id).limit(limit)
    if stop is not None:
        stmt = stmt.where(AuditEvent.id < stop)
    return [(int(i), str(h)) for i, h in (await db.execute(stmt)).all()]


async def delete_audit(db: AsyncSession, first_id: int, last_id: int) -> int:
    from connectx.audit.repository import forget_head

    forget_head(db)  # the transaction's cached chain head may be among them
    result = await db.execute(
        delete(AuditEvent)
        .where(AuditEvent.id >= first_id, AuditEvent.id <= last_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- the consent ledger: whole subjects, once they are gone -------------------------------------


def _gone() -> ColumnElement[bool]:
    """The record's subject is no longer a user or an identifiable contact."""
    return or_(
        and_(
            ConsentRecord.subject.like("user:%"),
            ~exists().where(ref("user", User.id) == ConsentRecord.subject),
        ),
        and_(
            ConsentRecord.subject.like("contact:%"),
            ~exists().where(
                ref("contact", Contact.id) == ConsentRecord.subject,
                or_(Contact.phone_index.is_not(None), Contact.bsuid_index.is_not(None)),
            ),
        ),
    )


def _consent_held() -> ColumnElement[bool]:
    """A hold on the subject, or on a workspace any of the subject's records belongs to."""
    other = aliased(ConsentRecord)
    return or_(
        hold_covers(None, ConsentRecord.subject),
        exists().where(
            other.subject == ConsentRecord.subject,
            hold_covers(other.workspace_id, None),
        ),
    )


async def consent_subjects(
    db: AsyncSession, cutoff: datetime, limit: int | None, *, held: bool = False
) -> list[tuple[str, int, int]]:
    """Subjects whose every record is older than ``cutoff`` and who are gone, with their newest
    record id and their record count; ``held``: those a legal hold keeps instead."""
    hold = _consent_held()
    stmt = (
        select(ConsentRecord.subject, func.max(ConsentRecord.id), func.count())
        .where(_gone(), hold if held else ~hold)
        .group_by(ConsentRecord.subject)
        .having(func.max(ConsentRecord.created_at) < cutoff)
        .order_by(func.max(ConsentRecord.id))
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(str(s), int(i), int(n)) for s, i, n in (await db.execute(stmt)).all()]


async def delete_consent(db: AsyncSession, subject: str, up_to_id: int) -> int:
    result = await db.execute(
        delete(ConsentRecord)
        .where(ConsentRecord.subject == subject, ConsentRecord.id <= up_to_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
