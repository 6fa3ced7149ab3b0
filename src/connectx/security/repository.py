"""SQL of security signals: sign-in events, notices to owners, workspace suspensions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.security import SecurityNotice, SignInEvent, WorkspaceSuspension
from connectx.models.workspace import Membership, Workspace

# -- sign-in events ------------------------------------------------------------------------------


async def add_event(db: AsyncSession, event: SignInEvent) -> SignInEvent:
    db.add(event)
    await db.flush()
    return event


async def has_signed_in(db: AsyncSession, user_id: int, *, before_id: int) -> bool:
    stmt = select(SignInEvent.id).where(
        SignInEvent.user_id == user_id, SignInEvent.succeeded.is_(True), SignInEvent.id < before_id
    )
    return (await db.execute(stmt.limit(1))).first() is not None


async def knows_device(db: AsyncSession, user_id: int, device_hash: bytes, before_id: int) -> bool:
    stmt = select(SignInEvent.id).where(
        SignInEvent.user_id == user_id,
        SignInEvent.succeeded.is_(True),
        SignInEvent.device_hash == device_hash,
        SignInEvent.id < before_id,
    )
    return (await db.execute(stmt.limit(1))).first() is not None


async def knows_country(db: AsyncSession, user_id: int, country: str, before_id: int) -> bool:
    stmt = select(SignInEvent.id).where(
        SignInEvent.user_id == user_id,
        SignInEvent.succeeded.is_(True),
        SignInEvent.country == country,
        SignInEvent.id < before_id,
    )
    return (await db.execute(stmt.limit(1))).first() is not None


async def count_since(db: AsyncSession, user_id: int, since: datetime, *, succeeded: bool) -> int:
    stmt = select(func.count()).where(
        SignInEvent.user_id == user_id,
        SignInEvent.succeeded.is_(succeeded),
        SignInEvent.at >= since,
    )
    return int((await db.execute(stmt)).scalar_one())


async def countries_since(db: AsyncSession, user_id: int, since: datetime) -> int:
    stmt = select(func.count(distinct(SignInEvent.country))).where(
        SignInEvent.user_id == user_id,
        SignInEvent.succeeded.is_(True),
        SignInEvent.country.is_not(None),
        SignInEvent.at >= since,
    )
    return int((await db.execute(stmt)).scalar_one())


async def recent_events(db: AsyncSession, user_id: int, limit: int) -> list[SignInEvent]:
    stmt = (
        select(SignInEvent)
        .where(SignInEvent.user_id == user_id)
        .order_by(SignInEvent.at.desc(), SignInEvent.id.desc())
        .limit(limit)
    )
    return list((await db.execute(stmt)).scalars())


async def successful_events(db: AsyncSession, user_id: int, limit: int) -> list[SignInEvent]:
    stmt = (
        select(SignInEvent)
        .where(SignInEvent.user_id == user_id, SignInEvent.succeeded.is_(True))
        .order_by(SignInEvent.at.desc(), SignInEvent.id.desc())
        .limit(limit)
    )
    return list((await db.execute(stmt)).scalars())


# -- workspaces and notices -----------------------------------------------------------------------


async def workspaces_of(db: AsyncSession, user_id: int) -> list[Workspace]:
    stmt = (
        select(Workspace)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.id)
    )
    return list((await db.execute(stmt)).scalars())


async def owners_of(db: AsyncSession, workspace_id: int) -> list[int]:
    stmt = select(Membership.user_id).where(
        Membership.workspace_id == workspace_id, Membership.role == "owner"
    )
    return [int(v) for v in (await db.execute(stmt.order_by(Membership.user_id))).scalars()]


async def open_notice_since(
    db: AsyncSession, workspace_id: int, kind: str, subject: str, since: datetime
) -> bool:
    stmt = select(SecurityNotice.id).where(
        SecurityNotice.workspace_id == workspace_id,
        SecurityNotice.kind == kind,
        SecurityNotice.subject == subject,
        SecurityNotice.created_at >= since,
    )
    return (await db.execute(stmt.limit(1))).first() is not None


async def add_notice(db: AsyncSession, notice: SecurityNotice) -> SecurityNotice:
    db.add(notice)
    await db.flush()
    return notice


async def notices(
    db: AsyncSession, workspace_id: int, *, open_only: bool, limit: int = 100
) -> list[SecurityNotice]:
    stmt = select(SecurityNotice).where(SecurityNotice.workspace_id == workspace_id)
    if open_only:
        stmt = stmt.where(SecurityNotice.resolved_at.is_(None))
    stmt = stmt.order_by(SecurityNotice.created_at.desc(), SecurityNotice.id.desc()).limit(limit)
    return list((await db.execute(stmt)).scalars())


async def resolve_notices(db: AsyncSession, workspace_id: int, by: str, at: datetime) -> int:
    result = await db.execute(
        update(SecurityNotice)
        .where(SecurityNotice.workspace_id == workspace_id, SecurityNotice.resolved_at.is_(None))
        .values(resolved_at=at, resolved_by=by)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- suspensions -------------------------------------------------------------------------------


async def active_suspension(db: AsyncSession, workspace_id: int) -> WorkspaceSuspension | None:
    stmt = (
        select(WorkspaceSuspension)
        .where(
            WorkspaceSuspension.workspace_id == workspace_id,
            WorkspaceSuspension.lifted_at.is_(None),
        )
        .order_by(WorkspaceSuspension.id.desc())
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def suspended_among(db: AsyncSession, workspace_ids: Iterable[int]) -> set[int]:
    ids = list(set(workspace_ids))
    if not ids:
        return set()
    stmt = select(WorkspaceSuspension.workspace_id).where(
        WorkspaceSuspension.workspace_id.in_(ids), WorkspaceSuspension.lifted_at.is_(None)
    )
    return {int(v) for v in (await db.execute(stmt)).scalars()}


async def add_suspension(db: AsyncSession, row: WorkspaceSuspension) -> WorkspaceSuspension:
    db.add(row)
    await db.flush()
    return row


async def lift(db: AsyncSession, workspace_id: int, by: str, at: datetime) -> int:
    result = await db.execute(
        update(WorkspaceSuspension)
        .where(
            WorkspaceSuspension.workspace_id == workspace_id,
            WorkspaceSuspension.lifted_at.is_(None),
        )
        .values(lifted_at=at, lifted_by=by)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def workspace(db: AsyncSession, workspace_id: int) -> Workspace | None:
    return await db.get(Workspace, workspace_id)
