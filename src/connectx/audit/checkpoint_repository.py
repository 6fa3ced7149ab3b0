"""SQL for the audit chain's checkpoints and anchors (key-store tables; ``privacy.keystore``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.models.crypto_key import AuditAnchor, AuditCheckpoint


async def add(db: AsyncSession, event_id: int, hash_: str, entries: int) -> None:
    db.add(AuditCheckpoint(event_id=event_id, hash=hash_, entries=entries, created_at=clock.now()))
    await db.flush()


async def last(db: AsyncSession) -> tuple[int, str, int] | None:
    stmt = select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
    row = (await db.execute(stmt)).scalar_one_or_none()
    return None if row is None else (row.event_id, row.hash, row.entries)


async def add_anchor(db: AsyncSession, up_to_id: int, hash_: str, pruned: int) -> None:
    db.add(AuditAnchor(up_to_id=up_to_id, hash=hash_, pruned=pruned, created_at=clock.now()))
    await db.flush()


async def anchors(db: AsyncSession) -> list[tuple[int, str, int]]:
    """(last pruned id, its hash, entries pruned), oldest first."""
    stmt = select(AuditAnchor).order_by(AuditAnchor.up_to_id, AuditAnchor.id)
    return [(r.up_to_id, r.hash, r.pruned) for r in (await db.execute(stmt)).scalars()]
