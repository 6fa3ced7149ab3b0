"""SQL for inbound media files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import scoped
from connectx.models.media import MediaFile


async def add_many(db: AsyncSession, rows: list[dict[str, Any]]) -> list[MediaFile]:
    files = [MediaFile(**values) for values in rows]
    db.add_all(files)
    await db.flush()
    return files


async def by_message(db: AsyncSession, message_id: int) -> MediaFile | None:
    stmt = select(MediaFile).where(MediaFile.message_id == message_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def in_workspace_by_message(
    db: AsyncSession, workspace_id: int, message_id: int
) -> MediaFile | None:
    stmt = scoped(MediaFile, workspace_id).where(MediaFile.message_id == message_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def states_of(
    db: AsyncSession, workspace_id: int, message_ids: Iterable[int]
) -> dict[int, str]:
    ids = list(message_ids)
    if not ids:
        return {}
    stmt = scoped(MediaFile, workspace_id, MediaFile.message_id, MediaFile.state).where(
        MediaFile.message_id.in_(ids)
    )
    return {message_id: state for message_id, state in (await db.execute(stmt)).all()}


async def settle(db: AsyncSession, media_id: int, expected_state: str, **values: Any) -> bool:
    """Move a media row out of ``expected_state``; False when another attempt moved it first."""
    stmt = (
        update(MediaFile)
        .where(MediaFile.id == media_id, MediaFile.state == expected_state)
        .values(**values)
    )
    result = await db.execute(stmt)
    return bool(getattr(result, "rowcount", 0))
