"""SQL for the mail outbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.mail import MailMessage


async def add(db: AsyncSession, message: MailMessage) -> MailMessage:
    db.add(message)
    await db.flush()
    return message


async def get(db: AsyncSession, mail_id: int) -> MailMessage | None:
    return await db.get(MailMessage, mail_id)


async def latest(db: AsyncSession, limit: int = 50) -> list[MailMessage]:
    stmt = select(MailMessage).order_by(MailMessage.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())
