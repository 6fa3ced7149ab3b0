"""SQL of policy versions and acceptances."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.account import User, UserSession
from connectx.models.policy import PolicyAcceptance, PolicyVersion
from connectx.models.security import SecurityNotice, WorkspaceSuspension
from connectx.models.workspace import Membership


def _session_with_notices() -> Any:
    owned = (
        select(Membership.workspace_id)
        .where(Membership.user_id == UserSession.user_id, Membership.role == "owner")
        .correlate(UserSession)
    )
    notices = (
        select(func.count(SecurityNotice.id))
        .where(SecurityNotice.workspace_id.in_(owned), SecurityNotice.resolved_at.is_(None))
        .correlate(UserSession)
        .scalar_subquery()
    )
    suspended = (
        exists()
        .where(
            WorkspaceSuspension.workspace_id == UserSession.workspace_id,
            WorkspaceSuspension.lifted_at.is_(None),
        )
        .correlate(UserSession)
    )
    role = (
        select(Membership.role)
        .where(
            Membership.user_id == UserSession.user_id,
            Membership.workspace_id == UserSession.workspace_id,
        )
        .correlate(UserSession)
        .scalar_subquery()
    )
    return select(UserSession, notices, suspended, role).where(
        UserSession.token_hash == bindparam("token_hash")
    )


# Built once: every page view runs it, and building it and its cache key cost more than
# running it (~0.6 ms of a page).
_SESSION_WITH_NOTICES = _session_with_notices()


async def session_with_notices(
    db: AsyncSession, token_hash: bytes
) -> tuple[UserSession, int, bool, str | None] | None:
    """For the page gate, in one statement: the session, the open security notices of the
    workspaces its person owns, whether the session's workspace is suspended, and the person's
    role in it (what the page's own authentication then needs: it reads no session again)."""
    params = {"token_hash": token_hash}
    row = (await db.execute(_SESSION_WITH_NOTICES, params)).one_or_none()
    return (row[0], int(row[1] or 0), bool(row[2]), row[3]) if row is not None else None


async def versions(db: AsyncSession) -> list[PolicyVersion]:
    """Every published version, oldest first."""
    stmt = select(PolicyVersion).order_by(PolicyVersion.kind, PolicyVersion.effective_on)
    return list((await db.execute(stmt)).scalars())


async def latest(db: AsyncSession, kind: str) -> PolicyVersion | None:
    stmt = (
        select(PolicyVersion)
        .where(PolicyVersion.kind == kind)
        .order_by(PolicyVersion.effective_on.desc())
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def get(db: AsyncSession, version_id: int) -> PolicyVersion | None:
    return await db.get(PolicyVersion, version_id)


async def add_version(db: AsyncSession, version: PolicyVersion) -> PolicyVersion:
    db.add(version)
    await db.flush()
    return version


async def on_date(db: AsyncSession, kind: str, day: date) -> PolicyVersion | None:
    stmt = select(PolicyVersion).where(
        PolicyVersion.kind == kind, PolicyVersion.effective_on == day
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def accepted_ids(db: AsyncSession, user_id: int, version_ids: Sequence[int]) -> set[int]:
    if not version_ids:
        return set()
    stmt = select(PolicyAcceptance.version_id).where(
        PolicyAcceptance.user_id == user_id, PolicyAcceptance.version_id.in_(list(version_ids))
    )
    return {int(v) for v in (await db.execute(stmt)).scalars()}


async def latest_acceptance(db: AsyncSession, user_id: int, kind: str) -> int | None:
    """The id of the newest version of ``kind`` the user accepted."""
    stmt = (
        select(PolicyVersion.id)
        .join(PolicyAcceptance, PolicyAcceptance.version_id == PolicyVersion.id)
        .where(PolicyAcceptance.user_id == user_id, PolicyVersion.kind == kind)
        .order_by(PolicyVersion.effective_on.desc())
        .limit(1)
    )
    found = (await db.execute(stmt)).scalar_one_or_none()
    return int(found) if found is not None else None


async def add_acceptance(db: AsyncSession, acceptance: PolicyAcceptance) -> PolicyAcceptance:
    db.add(acceptance)
    await db.flush()
    return acceptance


async def user_created_at(db: AsyncSession, user_id: int) -> datetime | None:
    stmt = select(User.created_at).where(User.id == user_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def user_ids_after(db: AsyncSession, after_id: int, limit: int) -> list[int]:
    stmt = select(User.id).where(User.id > after_id).order_by(User.id).limit(limit)
    return [int(v) for v in (await db.execute(stmt)).scalars()]
