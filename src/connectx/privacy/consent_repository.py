"""SQL for the consent ledger. Appends and reads only: there is no update or delete here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.consent import ConsentRecord

_NEWEST_FIRST = (ConsentRecord.created_at.desc(), ConsentRecord.id.desc())


async def append(db: AsyncSession, entry: ConsentRecord) -> ConsentRecord:
    db.add(entry)
    await db.flush()
    return entry


async def latest(
    db: AsyncSession, subject: str, purpose: str, channel: str
) -> ConsentRecord | None:
    stmt = (
        select(ConsentRecord)
        .where(
            ConsentRecord.subject == subject,
            ConsentRecord.purpose == purpose,
            ConsentRecord.channel == channel,
        )
        .order_by(*_NEWEST_FIRST)
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def latest_per_purpose(db: AsyncSession, subject: str) -> Sequence[ConsentRecord]:
    ranked = (
        select(
            ConsentRecord.id,
            func.row_number()
            .over(
                partition_by=(ConsentRecord.purpose, ConsentRecord.channel),
                order_by=_NEWEST_FIRST,
            )
            .label("rank"),
        )
        .where(ConsentRecord.subject == subject)
        .subquery()
    )
    stmt = (
        select(ConsentRecord)
        .join(ranked, ranked.c.id == ConsentRecord.id)
        .where(ranked.c.rank == 1)
    )
    return list((await db.execute(stmt)).scalars())


async def history(
    db: AsyncSession, subject: str, purpose: str | None, channel: str | None
) -> Sequence[ConsentRecord]:
    stmt = select(ConsentRecord).where(ConsentRecord.subject == subject)
    if purpose is not None:
        stmt = stmt.where(ConsentRecord.purpose == purpose)
    if channel is not None:
        stmt = stmt.where(ConsentRecord.channel == channel)
    stmt = stmt.order_by(ConsentRecord.created_at, ConsentRecord.id)
    return list((await db.execute(stmt)).scalars())
