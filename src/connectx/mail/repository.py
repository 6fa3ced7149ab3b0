"""SQL for the mail outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.mail import MailMessage


async def add(db: AsyncSession, message: MailMessage) -> MailMessage:
    db.add(message)
    await db.flush()
    return message


async def get(db: AsyncSession, mail_id: int) -> MailMessage | None:
    return await db.get(MailMessage, mail_id)


async def latest(db: AsyncSession, limit: int = 50, status: str | None = None) -> list[MailMessage]:
    stmt = select(MailMessage).order_by(MailMessage.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(MailMessage.status == status)
    return list((await db.execute(stmt)).scalars())


async def count_attempt(db: AsyncSession, mail_id: int) -> None:
    await db.execute(
        update(MailMessage)
        .where(MailMessage.id == mail_id)
        .values(attempts=MailMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )


async def set_status(
    db: AsyncSession, mail_id: int, status: str, sent_at: datetime | None = None
) -> None:
    values: dict[str, object] = {"status": status}
    if sent_at is not None:
        values["sent_at"] = sent_at
    await db.execute(
        update(MailMessage)
        .where(MailMessage.id == mail_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
