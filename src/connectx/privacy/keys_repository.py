"""SQL for the key store's ``crypto_keys`` (sessions come from :mod:`connectx.privacy.keystore`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.models.crypto_key import CryptoKey

ROOT_KINDS = ("scope", "index", "audit")


async def latest(db: AsyncSession, kind: str, scope: str, subject: str = "") -> CryptoKey | None:
    """The newest version of a key, destroyed or not."""
    stmt = (
        select(CryptoKey)
        .where(CryptoKey.kind == kind, CryptoKey.scope == scope, CryptoKey.subject == subject)
        .order_by(CryptoKey.version.desc())
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def subject_versions(db: AsyncSession, scope: str, subjects: list[str]) -> list[CryptoKey]:
    """Every key version of these subjects of one scope (one query, for warming the cache)."""
    stmt = select(CryptoKey).where(
        CryptoKey.kind == "subject", CryptoKey.scope == scope, CryptoKey.subject.in_(subjects)
    )
    return list((await db.execute(stmt)).scalars())


async def active_root(
    db: AsyncSession, kind: str, scope: str, *, share: bool = False
) -> CryptoKey | None:
    """The active key of ``kind`` for ``scope``. ``share``: share-locked on PostgreSQL, for a
    scope key a child is about to be wrapped under, so that a rotation cannot retire it before
    the child commits (docs/privacy-encryption.md, "Locks")."""
    stmt = (
        select(CryptoKey)
        .where(
            CryptoKey.kind == kind,
            CryptoKey.scope == scope,
            CryptoKey.subject == "",
            CryptoKey.active.is_(True),
            CryptoKey.wrapped.is_not(None),
        )
        .order_by(CryptoKey.version.desc())
        .limit(1)
    )
    if share:
        stmt = stmt.with_for_update(read=True)
    return (await db.execute(stmt)).scalar_one_or_none()


async def get(db: AsyncSession, key_id: int) -> CryptoKey | None:
    return await db.get(CryptoKey, key_id, populate_existing=True)


async def insert(db: AsyncSession, key: CryptoKey) -> CryptoKey:
    db.add(key)
    await db.flush()
    return key


async def insert_subject_keys(db: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """One multi-row insert of subject keys of one scope (column values per row); returns
    subject -> new key id (matched by subject, whatever order the database returns them in)."""
    if not rows:
        return {}
    stmt = sql_insert(CryptoKey).returning(CryptoKey.id, CryptoKey.subject)
    return {str(subject): int(key_id) for key_id, subject in (await db.execute(stmt, rows)).all()}


async def destroy_subject(db: AsyncSession, scope: str, subject: str) -> list[int]:
    """Empty every version of a subject's data key; returns the ids destroyed."""
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


async def live_subjects_like(db: AsyncSession, prefix: str, scope: str = "platform") -> list[str]:
    """Subjects of ``scope`` starting with ``prefix`` that still have a live key version."""
    stmt = (
        select(CryptoKey.subject)
        .where(
            CryptoKey.kind == "subject",
            CryptoKey.scope == scope,
            CryptoKey.subject.startswith(prefix, autoescape=True),
            CryptoKey.wrapped.is_not(None),
        )
        .distinct()
        .order_by(CryptoKey.subject)
    )
    return list((await db.execute(stmt)).scalars())


async def destroy_ids(db: AsyncSession, key_ids: Sequence[int]) -> list[int]:
    """Empty the given subject keys if they still hold material; returns those emptied."""
    stmt = (
        update(CryptoKey)
        .where(
            CryptoKey.id.in_(list(key_ids)),
            CryptoKey.kind == "subject",
            CryptoKey.wrapped.is_not(None),
        )
        .values(wrapped=None, active=False, destroyed_at=clock.now())
        .returning(CryptoKey.id)
    )
    return list((await db.execute(stmt)).scalars())


async def roots_not_under(db: AsyncSession, master_id: str, limit: int) -> list[CryptoKey]:
    """Live keys wrapped by another master key than ``master_id``, locked for re-wrapping."""
    stmt = (
        select(CryptoKey)
        .where(
            CryptoKey.kind.in_(ROOT_KINDS),
            CryptoKey.wrapped.is_not(None),
            CryptoKey.master_id != master_id,
        )
        .order_by(CryptoKey.id)
        .limit(limit)
        .with_for_update()
    )
    return list((await db.execute(stmt)).scalars())


async def live_scope_keys(db: AsyncSession, scope: str) -> list[CryptoKey]:
    """A scope's key versions that still hold material, oldest first, locked for rotation."""
    stmt = (
        select(CryptoKey)
        .where(
            CryptoKey.kind == "scope",
            CryptoKey.scope == scope,
            CryptoKey.wrapped.is_not(None),
        )
        .order_by(CryptoKey.version)
        .with_for_update()
    )
    return list((await db.execute(stmt)).scalars())


async def scopes(db: AsyncSession) -> list[str]:
    stmt = (
        select(CryptoKey.scope)
        .where(CryptoKey.kind == "scope", CryptoKey.wrapped.is_not(None))
        .distinct()
        .order_by(CryptoKey.scope)
    )
    return list((await db.execute(stmt)).scalars())


async def live_children(db: AsyncSession, parent_ids: Sequence[int], limit: int) -> list[CryptoKey]:
    stmt = (
        select(CryptoKey)
        .where(CryptoKey.parent_id.in_(list(parent_ids)), CryptoKey.wrapped.is_not(None))
        .order_by(CryptoKey.id)
        .limit(limit)
        .with_for_update()
    )
    return list((await db.execute(stmt)).scalars())


async def retire(db: AsyncSession, key_ids: Sequence[int]) -> None:
    """Empty keys nothing is wrapped under any more (old scope versions after a rotation)."""
    stmt = (
        update(CryptoKey)
        .where(CryptoKey.id.in_(list(key_ids)))
        .values(wrapped=None, active=False, destroyed_at=clock.now())
    )
    await db.execute(stmt)


async def deactivate(db: AsyncSession, key_ids: Sequence[int]) -> None:
    stmt = update(CryptoKey).where(CryptoKey.id.in_(list(key_ids))).values(active=False)
    await db.execute(stmt)


async def master_ids_in_use(db: AsyncSession) -> dict[str, int]:
    stmt = (
        select(CryptoKey.master_id, func.count())
        .where(CryptoKey.master_id.is_not(None), CryptoKey.wrapped.is_not(None))
        .group_by(CryptoKey.master_id)
    )
    return {str(mid): int(n) for mid, n in (await db.execute(stmt)).all()}


async def counts(db: AsyncSession) -> list[tuple[str, bool, int]]:
    """(kind, holds material, count) for ``connectx keys status``."""
    live = CryptoKey.wrapped.is_not(None)
    stmt = (
        select(CryptoKey.kind, live, func.count())
        .group_by(CryptoKey.kind, live)
        .order_by(CryptoKey.kind)
    )
    return [(str(k), bool(v), int(n)) for k, v, n in (await db.execute(stmt)).all()]
