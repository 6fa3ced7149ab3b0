"""SQL for account holders, their sessions, one-time tokens, recovery codes and sign-in attempts.

(Authentication of each request reads through :mod:`connectx.accounts.auth_repository`.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.models.account import ActionToken, LoginAttempt, RecoveryCode, User, UserSession
from connectx.models.workspace import Membership

# -- users ------------------------------------------------------------------------------------


async def add_user(db: AsyncSession, user: User) -> User:
    db.add(user)
    await db.flush()
    return user


async def get_user(db: AsyncSession, user_id: int) -> User | None:
    return await db.get(User, user_id)


async def user_by_email_index(db: AsyncSession, email_index: bytes) -> User | None:
    stmt = select(User).where(User.email_index == email_index)
    return (await db.execute(stmt)).scalar_one_or_none()


async def users_by_ids(db: AsyncSession, user_ids: list[int]) -> list[User]:
    if not user_ids:
        return []
    stmt = select(User).where(User.id.in_(user_ids)).order_by(User.id)
    return list((await db.execute(stmt)).scalars())


async def first_workspace_of(db: AsyncSession, user_id: int) -> int | None:
    stmt = (
        select(Membership.workspace_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Membership.id)
        .limit(1)
    )
    return (await db.execute(stmt)).scalar_one_or_none()


# -- sessions ---------------------------------------------------------------------------------


async def add_session(db: AsyncSession, session: UserSession) -> UserSession:
    db.add(session)
    await db.flush()
    return session


async def session_by_token_hash(db: AsyncSession, token_hash: bytes) -> UserSession | None:
    stmt = select(UserSession).where(UserSession.token_hash == token_hash)
    return (await db.execute(stmt)).scalar_one_or_none()


async def live_sessions_of(db: AsyncSession, user_id: int, now: datetime) -> list[UserSession]:
    stmt = (
        select(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.mfa_pending.is_(False),
            UserSession.expires_at > now,
        )
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return list((await db.execute(stmt)).scalars())


async def session_of_user(db: AsyncSession, user_id: int, session_id: int) -> UserSession | None:
    stmt = select(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id)
    return (await db.execute(stmt)).scalar_one_or_none()


async def revoke_session(db: AsyncSession, session_id: int, at: datetime) -> None:
    await db.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def revoke_sessions_of(
    db: AsyncSession,
    user_id: int,
    at: datetime,
    *,
    workspace_id: int | None = None,
    except_id: int | None = None,
) -> int:
    stmt = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if workspace_id is not None:
        stmt = stmt.where(UserSession.workspace_id == workspace_id)
    if except_id is not None:
        stmt = stmt.where(UserSession.id != except_id)
    result = await db.execute(stmt.values(revoked_at=at))
    return int(getattr(result, "rowcount", 0) or 0)


async def set_session_workspace(
    db: AsyncSession, session_id: int, workspace_id: int | None
) -> None:
    await db.execute(
        update(UserSession).where(UserSession.id == session_id).values(workspace_id=workspace_id)
    )


# -- one-time tokens --------------------------------------------------------------------------


async def add_token(db: AsyncSession, token: ActionToken) -> ActionToken:
    db.add(token)
    await db.flush()
    return token


async def token_by_hash(db: AsyncSession, purpose: str, token_hash: bytes) -> ActionToken | None:
    stmt = select(ActionToken).where(
        ActionToken.token_hash == token_hash, ActionToken.purpose == purpose
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def use_open_tokens(db: AsyncSession, user_id: int, purpose: str, at: datetime) -> None:
    """Mark every unused token of this purpose as used (a newer link replaces older ones)."""
    await db.execute(
        update(ActionToken)
        .where(
            ActionToken.user_id == user_id,
            ActionToken.purpose == purpose,
            ActionToken.used_at.is_(None),
        )
        .values(used_at=at)
    )


async def use_token(db: AsyncSession, token_id: int, at: datetime) -> bool:
    """Mark a token used; False when another request used it first (single use holds under
    concurrency because the update is conditional)."""
    result = await db.execute(
        update(ActionToken)
        .where(ActionToken.id == token_id, ActionToken.used_at.is_(None))
        .values(used_at=at)
    )
    return bool(getattr(result, "rowcount", 0))


# -- recovery codes ---------------------------------------------------------------------------


async def replace_recovery_codes(db: AsyncSession, user_id: int, hashes: list[bytes]) -> None:
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    db.add_all(RecoveryCode(user_id=user_id, code_hash=h) for h in hashes)
    await db.flush()


async def delete_recovery_codes(db: AsyncSession, user_id: int) -> None:
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


async def use_recovery_code(db: AsyncSession, user_id: int, code_hash: bytes, at: datetime) -> bool:
    code_id = (
        await db.execute(
            select(RecoveryCode.id).where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if code_id is None:
        return False
    result = await db.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == code_id, RecoveryCode.used_at.is_(None))
        .values(used_at=at)
    )
    return bool(getattr(result, "rowcount", 0))


async def unused_recovery_codes(db: AsyncSession, user_id: int) -> int:
    stmt = select(func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
    )
    return int((await db.execute(stmt)).scalar_one())


# -- attempts (brute-force limits) ------------------------------------------------------------


async def add_attempt(db: AsyncSession, attempt: LoginAttempt) -> None:
    db.add(attempt)
    await db.flush()


async def failures_since(db: AsyncSession, key_hash: bytes, since: datetime) -> list[datetime]:
    """Times of failed attempts for this key after ``since`` (and after its last success),
    oldest first."""
    last_success = (
        await db.execute(
            select(func.max(LoginAttempt.created_at)).where(
                LoginAttempt.key_hash == key_hash,
                LoginAttempt.succeeded.is_(True),
                LoginAttempt.created_at > since,
            )
        )
    ).scalar_one_or_none()
    start = last_success if last_success is not None else since  # max() keeps the UTC type
    stmt = (
        select(LoginAttempt.created_at)
        .where(
            LoginAttempt.key_hash == key_hash,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.created_at > start,
        )
        .order_by(LoginAttempt.created_at)
    )
    return list((await db.execute(stmt)).scalars())


async def attempts_since(db: AsyncSession, key_hash: bytes, since: datetime) -> list[datetime]:
    """Times of every attempt (failed or not) for this key after ``since``, oldest first."""
    stmt = (
        select(LoginAttempt.created_at)
        .where(LoginAttempt.key_hash == key_hash, LoginAttempt.created_at > since)
        .order_by(LoginAttempt.created_at)
    )
    return list((await db.execute(stmt)).scalars())


async def prune_attempts(db: AsyncSession, before: datetime) -> int:
    result = await db.execute(delete(LoginAttempt).where(LoginAttempt.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
