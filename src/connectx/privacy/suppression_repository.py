"""SQL for the suppression list (keyed hashes of addresses that opted out)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import scoped
from connectx.kit.upsert import insert_ignore
from connectx.models.consent import ConsentSuppression


async def add(
    db: AsyncSession,
    workspace_id: int,
    channel: str,
    purpose: str,
    hashes: list[bytes],
    **kw: object,
) -> None:
    rows = [
        {
            "workspace_id": workspace_id,
            "channel": channel,
            "purpose": purpose,
            "address_hash": h,
            **kw,
        }
        for h in hashes
    ]
    if rows:
        await db.execute(insert_ignore(db, ConsentSuppression, rows))


async def remove(
    db: AsyncSession, workspace_id: int, channel: str, purpose: str, hashes: list[bytes]
) -> None:
    if not hashes:
        return
    ids = scoped(ConsentSuppression, workspace_id, ConsentSuppression.id).where(
        ConsentSuppression.channel == channel,
        ConsentSuppression.purpose == purpose,
        ConsentSuppression.address_hash.in_(hashes),
    )
    await db.execute(delete(ConsentSuppression).where(ConsentSuppression.id.in_(ids)))


async def matching(
    db: AsyncSession, workspace_id: int, hashes: list[bytes]
) -> list[ConsentSuppression]:
    if not hashes:
        return []
    stmt = scoped(ConsentSuppression, workspace_id).where(
        ConsentSuppression.address_hash.in_(set(hashes))
    )
    return list((await db.execute(stmt)).scalars())
