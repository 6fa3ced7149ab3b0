"""SQL for Meta apps and channels."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import get_in_workspace, scoped
from connectx.models.channel import Channel, MetaApp


async def app_by_meta_id(db: AsyncSession, app_id: str) -> MetaApp | None:
    return (await db.execute(select(MetaApp).where(MetaApp.app_id == app_id))).scalar_one_or_none()


async def app_by_id(db: AsyncSession, row_id: int) -> MetaApp | None:
    return await db.get(MetaApp, row_id)


async def apps_by_ids(db: AsyncSession, ids: Iterable[int]) -> list[MetaApp]:
    wanted = list(set(ids))
    if not wanted:
        return []
    return list((await db.execute(select(MetaApp).where(MetaApp.id.in_(wanted)))).scalars())


async def live_apps(db: AsyncSession) -> list[MetaApp]:
    """Apps whose secret is still held (at least one channel uses them)."""
    stmt = select(MetaApp).where(MetaApp.secret_enc.is_not(None)).order_by(MetaApp.id)
    return list((await db.execute(stmt)).scalars())


async def apps_with_verify_token(db: AsyncSession, index: bytes) -> list[MetaApp]:
    stmt = select(MetaApp).where(
        MetaApp.verify_token_index == index, MetaApp.secret_enc.is_not(None)
    )
    return list((await db.execute(stmt)).scalars())


async def add(db: AsyncSession, row: MetaApp | Channel) -> None:
    db.add(row)
    await db.flush()


async def live_channel_for_number(db: AsyncSession, phone_number_id: str) -> Channel | None:
    stmt = select(Channel).where(
        Channel.phone_number_id == phone_number_id, Channel.disconnected_at.is_(None)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def live_channels_for_numbers(
    db: AsyncSession, phone_number_ids: Iterable[str]
) -> dict[str, Channel]:
    wanted = list(set(phone_number_ids))
    if not wanted:
        return {}
    stmt = select(Channel).where(
        Channel.phone_number_id.in_(wanted), Channel.disconnected_at.is_(None)
    )
    return {c.phone_number_id: c for c in (await db.execute(stmt)).scalars()}


async def workspaces_for_wabas(db: AsyncSession, waba_ids: Iterable[str]) -> dict[str, int]:
    """The workspace using each WABA (the earliest connected live channel decides)."""
    wanted = list(set(waba_ids))
    if not wanted:
        return {}
    stmt = (
        select(Channel.waba_id, Channel.workspace_id)
        .where(Channel.waba_id.in_(wanted), Channel.disconnected_at.is_(None))
        .order_by(Channel.id.desc())
    )
    return {waba: ws for waba, ws in (await db.execute(stmt)).all()}


async def list_in_workspace(
    db: AsyncSession, workspace_id: int, include_disconnected: bool
) -> list[Channel]:
    stmt = scoped(Channel, workspace_id)
    if not include_disconnected:
        stmt = stmt.where(Channel.disconnected_at.is_(None))
    return list((await db.execute(stmt.order_by(Channel.id))).scalars())


async def get(db: AsyncSession, workspace_id: int, channel_id: int) -> Channel:
    return await get_in_workspace(db, Channel, channel_id, workspace_id, "channel")


async def count_live_channels_of_app(db: AsyncSession, meta_app_id: int) -> int:
    stmt = select(func.count(Channel.id)).where(
        Channel.meta_app_id == meta_app_id, Channel.disconnected_at.is_(None)
    )
    return int((await db.execute(stmt)).scalar_one())


async def disconnect(db: AsyncSession, channel_id: int, at: datetime) -> None:
    await db.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(status="disconnected", disconnected_at=at, updated_at=at, access_token_enc=None)
    )


async def retire_app(db: AsyncSession, meta_app_id: int, at: datetime) -> None:
    await db.execute(
        update(MetaApp)
        .where(MetaApp.id == meta_app_id)
        .values(
            secret_enc=None,
            verify_token_enc=None,
            verify_token_index=None,
            retired_at=at,
            updated_at=at,
        )
    )
