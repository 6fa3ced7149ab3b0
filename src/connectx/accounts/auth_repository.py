"""SQL used to authenticate requests (sessions, API keys, memberships)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.account import UserSession
from connectx.models.api_key import ApiKey
from connectx.models.workspace import Membership

# Built once: every signed-in request runs it, and building a statement and its cache key
# costs more than running it (the cache key alone ~0.3 ms for this join).
_SESSION_AND_ROLE = (
    select(UserSession, Membership.role)
    .outerjoin(
        Membership,
        and_(
            Membership.user_id == UserSession.user_id,
            Membership.workspace_id == UserSession.workspace_id,
        ),
    )
    .where(UserSession.token_hash == bindparam("token_hash"))
)


async def session_and_role(
    db: AsyncSession, token_hash: bytes
) -> tuple[UserSession, str | None] | None:
    """The session and its person's role in the session's workspace (None when they are not a
    member of it, or no workspace is chosen), in one statement."""
    row = (await db.execute(_SESSION_AND_ROLE, {"token_hash": token_hash})).one_or_none()
    return (row[0], row[1]) if row is not None else None


async def api_key_by_hash(db: AsyncSession, key_hash: bytes) -> ApiKey | None:
    return (
        await db.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
    ).scalar_one_or_none()


async def touch_session(db: AsyncSession, session_id: int, at: datetime) -> None:
    await db.execute(
        update(UserSession).where(UserSession.id == session_id).values(last_seen_at=at)
    )


async def touch_api_key(db: AsyncSession, key_id: int, at: datetime) -> None:
    await db.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
