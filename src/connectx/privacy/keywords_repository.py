"""SQL for a workspace's WhatsApp consent keywords."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import scoped
from connectx.models.consent import ConsentKeywords


async def for_workspace(db: AsyncSession, workspace_id: int) -> list[ConsentKeywords]:
    stmt = scoped(ConsentKeywords, workspace_id).order_by(ConsentKeywords.language)
    return list((await db.execute(stmt)).scalars())


async def replace(db: AsyncSession, workspace_id: int, rows: list[ConsentKeywords]) -> None:
    ids = scoped(ConsentKeywords, workspace_id, ConsentKeywords.id)
    await db.execute(delete(ConsentKeywords).where(ConsentKeywords.id.in_(ids)))
    db.add_all(rows)
    await db.flush()
