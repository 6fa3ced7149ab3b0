"""All SQL of workspaces, memberships, invitations and API keys.

Every query on a tenant-owned table goes through :mod:`connectx.kit.tenancy` (``scoped``,
``scoped_update``, ``get_in_workspace``); the only unscoped reads are the ones that *find* the
tenant: a user's memberships, an invitation by its secret token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.tenancy import get_in_workspace, scoped, scoped_update
from connectx.models.account import User
from connectx.models.api_key import ApiKey
from connectx.models.workspace import Invitation, Membership, Workspace

# -- workspaces -------------------------------------------------------------------------------


async def add(db: AsyncSession, obj: object) -> None:
    db.add(obj)
    await db.flush()


async def workspace(db: AsyncSession, workspace_id: int, *, lock: bool = False) -> Workspace | None:
    stmt = select(Workspace).where(Workspace.id == workspace_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await db.execute(stmt)).scalar_one_or_none()


async def workspace_by_name(db: AsyncSession, name: str) -> Workspace | None:
    stmt = select(Workspace).where(Workspace.name == name).order_by(Workspace.id).limit(1)
    return (await db.execute(stmt)).scalar_one_or_none()


async def workspaces_of_user(db: AsyncSession, user_id: int) -> list[tuple[Workspace, str]]:
    """The workspaces ``user_id`` belongs to, with the role held in each."""
    stmt = (
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name, Workspace.id)
    )
    return [(ws, role) for ws, role in (await db.execute(stmt)).all()]


# -- memberships ------------------------------------------------------------------------------


async def member(db: AsyncSession, workspace_id: int, member_id: int) -> Membership:
    return await get_in_workspace(db, Membership, member_id, workspace_id, "member")


async def membership_of_user(
    db: AsyncSession, workspace_id: int, user_id: int
) -> Membership | None:
    stmt = scoped(Membership, workspace_id).where(Membership.user_id == user_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def members(db: AsyncSession, workspace_id: int) -> list[Membership]:
    stmt = scoped(Membership, workspace_id).order_by(Membership.created_at, Membership.id)
    return list((await db.execute(stmt)).scalars())


async def count_owners(db: AsyncSession, workspace_id: int) -> int:
    stmt = scoped(Membership, workspace_id, func.count(Membership.id)).where(
        Membership.role == "owner"
    )
    return int((await db.execute(stmt)).scalar_one())


async def set_role(db: AsyncSession, workspace_id: int, member_id: int, role: str) -> None:
    await db.execute(
        scoped_update(Membership, workspace_id).where(Membership.id == member_id).values(role=role)
    )


async def delete_member(db: AsyncSession, membership: Membership) -> None:
    await db.delete(membership)
    await db.flush()


# -- users (what membership decisions need to read) -------------------------------------------


async def user(db: AsyncSession, user_id: int) -> User | None:
    return await db.get(User, user_id)


async def users(db: AsyncSession, user_ids: list[int]) -> dict[int, User]:
    if not user_ids:
        return {}
    rows = (await db.execute(select(User).where(User.id.in_(user_ids)))).scalars()
    return {u.id: u for u in rows}


async def user_by_email_index(db: AsyncSession, email_index: bytes) -> User | None:
    stmt = select(User).where(User.email_index == email_index)
    return (await db.execute(stmt)).scalar_one_or_none()


# -- invitations ------------------------------------------------------------------------------


async def invitation(db: AsyncSession, workspace_id: int, invitation_id: int) -> Invitation:
    return await get_in_workspace(db, Invitation, invitation_id, workspace_id, "invitation")


async def invitation_by_token_hash(db: AsyncSession, token_hash: bytes) -> Invitation | None:
    stmt = select(Invitation).where(Invitation.token_hash == token_hash)
    return (await db.execute(stmt)).scalar_one_or_none()


async def pending_invitations(
    db: AsyncSession, workspace_id: int, now: datetime, email_index: bytes | None = None
) -> list[Invitation]:
    stmt = scoped(Invitation, workspace_id).where(
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )
    if email_index is not None:
        stmt = stmt.where(Invitation.email_index == email_index)
    return list((await db.execute(stmt.order_by(Invitation.id.desc()))).scalars())


async def pending_invitations_to(
    db: AsyncSession, email_index: bytes, now: datetime
) -> list[tuple[Invitation, Workspace]]:
    """Open invitations to one address, across workspaces: the invitee's own view (it finds
    tenants for a person, like :func:`workspaces_of_user`)."""
    stmt = (
        select(Invitation, Workspace)
        .join(Workspace, Workspace.id == Invitation.workspace_id)
        .where(
            Invitation.email_index == email_index,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
        .order_by(Invitation.id)
    )
    return [(inv, ws) for inv, ws in (await db.execute(stmt)).all()]


async def mark_invitation(
    db: AsyncSession,
    workspace_id: int,
    invitation_id: int,
    *,
    accepted_at: datetime | None = None,
    revoked_at: datetime | None = None,
) -> bool:
    """Close a still-open invitation; False when it was closed meanwhile."""
    values: dict[str, datetime] = {}
    if accepted_at is not None:
        values["accepted_at"] = accepted_at
    if revoked_at is not None:
        values["revoked_at"] = revoked_at
    result = await db.execute(
        scoped_update(Invitation, workspace_id)
        .where(
            Invitation.id == invitation_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


# -- API keys ---------------------------------------------------------------------------------


async def api_key(db: AsyncSession, workspace_id: int, key_id: int) -> ApiKey:
    return await get_in_workspace(db, ApiKey, key_id, workspace_id, "API key")


async def api_key_creator(db: AsyncSession, workspace_id: int, key_id: int) -> int | None:
    stmt = scoped(ApiKey, workspace_id, ApiKey.created_by).where(ApiKey.id == key_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def api_keys(db: AsyncSession, workspace_id: int) -> list[ApiKey]:
    stmt = scoped(ApiKey, workspace_id).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
    return list((await db.execute(stmt)).scalars())


async def revoke_api_key(db: AsyncSession, workspace_id: int, key_id: int, at: datetime) -> None:
    await db.execute(
        scoped_update(ApiKey, workspace_id).where(ApiKey.id == key_id).values(revoked_at=at)
    )


async def revoke_api_keys_of(
    db: AsyncSession, workspace_id: int, user_id: int, at: datetime
) -> list[int]:
    stmt = scoped(ApiKey, workspace_id, ApiKey.id).where(
        ApiKey.created_by == user_id, ApiKey.revoked_at.is_(None)
    )
    ids = [int(i) for i in (await db.execute(stmt)).scalars()]
    if ids:
        await db.execute(
            scoped_update(ApiKey, workspace_id).where(ApiKey.id.in_(ids)).values(revoked_at=at)
        )
    return ids
