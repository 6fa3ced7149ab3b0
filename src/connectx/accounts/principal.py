"""Who is calling: a signed-in user (cookie session) or a workspace API key (Bearer), as FastAPI
dependencies (the :class:`Principal` itself is in :mod:`connectx.accounts.caller`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import auth_repository as repo
from connectx.accounts.caller import Principal
from connectx.config import get_settings
from connectx.db.session import db_session
from connectx.kit import clock
from connectx.kit.crypto import token_hash
from connectx.kit.errors import Forbidden, Unauthenticated
from connectx.models.account import UserSession

SESSION_COOKIE = "cx_session"
API_KEY_PREFIX = "cx_"
TOUCH_EVERY = timedelta(seconds=60)


def truncated_ip(request: Request) -> str | None:
    """The client address with the host part removed (IPv4 /24, IPv6 /48)."""
    host = request.client.host if request.client else None
    if not host:
        return None
    if ":" in host:
        return ":".join(host.split(":")[:3]) + "::/48"
    parts = host.split(".")
    return ".".join(parts[:3]) + ".0/24" if len(parts) == 4 else None


SEEN_SESSION = "cx_session_seen"  # request state: the session the page gate has just read


@dataclass(frozen=True)
class SeenSession:
    """A session row as the page gate read it (with the role), so a page's authentication does
    not read the same row again (``connectx.policies.gate``)."""

    token_hash: bytes
    id: int
    user_id: int
    workspace_id: int | None
    role: str | None
    revoked_at: datetime | None
    mfa_pending: bool
    expires_at: datetime
    last_seen_at: datetime
    csrf_token: str | None


async def _from_session(request: Request, db: AsyncSession, token: str) -> Principal | None:
    settings = get_settings()
    hashed = token_hash(token)
    seen = request.scope.get("state", {}).get(SEEN_SESSION)
    sess: UserSession | SeenSession
    if isinstance(seen, SeenSession) and seen.token_hash == hashed:
        sess, role = seen, seen.role
    else:
        found = await repo.session_and_role(db, hashed)
        if found is None:
            return None
        sess, role = found
    now = clock.now()
    if sess.revoked_at is not None or sess.mfa_pending:
        return None
    if now >= sess.expires_at or now - sess.last_seen_at > timedelta(
        minutes=settings.session_idle_minutes
    ):
        return None
    if now - sess.last_seen_at > TOUCH_EVERY:
        await repo.touch_session(db, sess.id, now)
    return Principal(
        actor=f"user:{sess.user_id}",
        user_id=sess.user_id,
        workspace_id=sess.workspace_id if role else None,
        role=role,
        session_id=sess.id,
        csrf_token=sess.csrf_token,
        ip=truncated_ip(request),
    )


async def _from_api_key(request: Request, db: AsyncSession, raw: str) -> Principal | None:
    key = await repo.api_key_by_hash(db, token_hash(raw))
    if key is None or key.revoked_at is not None:
        return None
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at > TOUCH_EVERY:
        await repo.touch_api_key(db, key.id, now)
    return Principal(
        actor=f"api_key:{key.id}",
        workspace_id=key.workspace_id,
        scopes=list(key.scopes or []),
        api_key_id=key.id,
        ip=truncated_ip(request),
    )


async def optional_principal(
    request: Request, db: AsyncSession = Depends(db_session, scope="function")
) -> Principal | None:
    """The caller, or None when anonymous. Cached per request by FastAPI."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        raw = auth[7:].strip()
        if not raw.startswith(API_KEY_PREFIX):
            raise Unauthenticated("The API key is not valid: it should start with 'cx_'.")
        principal = await _from_api_key(request, db, raw)
        if principal is None:
            raise Unauthenticated("The API key is not valid or was revoked.")
        return principal
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        return await _from_session(request, db, token)
    return None


async def require_principal(
    principal: Principal | None = Depends(optional_principal),
) -> Principal:
    if principal is None:
        raise Unauthenticated("Sign in, or send an API key as 'Authorization: Bearer cx_…'.")
    return principal


async def require_user(principal: Principal = Depends(require_principal)) -> Principal:
    if principal.user_id is None:
        raise Forbidden("This action needs a signed-in person, not an API key.")
    return principal


async def require_workspace(principal: Principal = Depends(require_principal)) -> Principal:
    if principal.workspace_id is None:
        raise Forbidden("Choose or create a workspace first.")
    return principal


def require_role(*roles: str):  # type: ignore[no-untyped-def]
    """Members with one of ``roles`` (API keys pass when they hold the ``admin`` scope)."""

    async def dependency(principal: Principal = Depends(require_workspace)) -> Principal:
        if principal.api_key_id is not None:
            if "admin" in principal.scopes or not roles:
                return principal
            raise Forbidden("This API key lacks the 'admin' scope needed here.")
        if principal.role not in roles:
            raise Forbidden(f"This needs one of these roles: {', '.join(roles)}.")
        return principal

    return dependency
