"""SQL for the key hierarchy (``crypto_keys``)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.models.crypto_key import CryptoKey


async def find(db: AsyncSession, kind: str, scope: str, subject: str = "") -> CryptoKey | None:
    stmt = (
        select(CryptoKey)
        .where(CryptoKey.kind == kind, CryptoKey.scope == scope, CryptoKey.subject == subject)
        .order_by(CryptoKey.active.desc(), CryptoKey.version.desc())
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def get(db: AsyncSession, key_id: int) -> CryptoKey | None:
    return await db.get(CryptoKey, key_id)


async def all_of_kind(db: AsyncSession, kind: str) -> list[CryptoKey]:
    stmt = select(CryptoKey).where(CryptoKey.kind == kind).order_by(CryptoKey.id)
    return list((await db.execute(stmt)).scalars())


async def insert(db: AsyncSession, key: CryptoKey) -> CryptoKey:
    db.add(key)
    await db.flush()
    return key


async def destroy(db: AsyncSession, scope: str, subject: str) -> list[int]:
    stmt = (
        update(CryptoKey)
        .where(
            CryptoKey.kind == "subject",
            CryptoKey.scope == scope,
            CryptoKey.subject == subject,
            CryptoKey.wrapped.is_not(None),
        )
        .values(wrapped=None, active=False, destroyed_at=clock.now())
        .returning(CryptoKey.id)
    )
    return list((await db.execute(stmt)).scalars())
