"""Server-side sign-in sessions.

The browser holds a random token in the ``cx_session`` cookie (HttpOnly, SameSite=Lax, Secure on
https); the database holds only its hash, so a copy of the database cannot be used to sign in.
Every sign-in, and the second factor, issue a new token. Sessions end after an idle period and at
an absolute limit (settings), on sign-out, "sign out everywhere", a password reset, or revocation
from the sessions list. Request authentication itself is in :mod:`connectx.accounts.principal`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import repository as repo
from connectx.accounts.principal import SESSION_COOKIE, truncated_ip
from connectx.audit import service as audit
from connectx.config import get_settings
from connectx.kit import clock
from connectx.kit.crypto import random_token, token_hash
from connectx.kit.errors import NotFound
from connectx.models.account import UserSession

# A password accepted while the second factor is still due: this long to type the code.
MFA_PENDING_MINUTES = 10


async def start_session(
    db: AsyncSession,
    user_id: int,
    request: Request | None,
    workspace_id: int | None = None,
    *,
    mfa_pending: bool = False,
) -> tuple[str, UserSession]:
    """A new session for ``user_id``; returns the raw token (for the cookie, never stored)."""
    settings = get_settings()
    now = clock.now()
    raw = random_token(32)
    lifetime = (
        timedelta(minutes=MFA_PENDING_MINUTES)
        if mfa_pending
        else timedelta(hours=settings.session_absolute_hours)
    )
    ua = request.headers.get("user-agent") if request is not None else None
    ip = truncated_ip(request) if request is not None else None
    session = await repo.add_session(
        db,
        UserSession(
            token_hash=token_hash(raw),
            user_id=user_id,
            workspace_id=workspace_id,
            csrf_token=random_token(32),
            mfa_pending=mfa_pending,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            ip_truncated=ip,
            user_agent=ua[:300] if ua else None,
        ),
    )
    await audit.record(
        db,
        actor=f"user:{user_id}",
        action="session.started",
        subject=f"user:{user_id}",
        ip=ip,
        data={"session_id": session.id, "second_factor_due": mfa_pending},
    )
    return raw, session


def set_session_cookie(response: Response, raw_token: str, session: UserSession) -> None:
    settings = get_settings()
    max_age = int((session.expires_at - clock.now()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        raw_token,
        max_age=max(max_age, 0),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def clear_session_cookie(response: Response) -> None:
    settings = get_settings()
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies
    )


async def session_from_cookie(db: AsyncSession, request: Request) -> UserSession | None:
    """The live session named by the request's cookie, whether or not its second factor is
    still due (the principal ignores pending sessions; the 2FA step needs them)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    session = await repo.session_by_token_hash(db, token_hash(raw))
    now = clock.now()
    if session is None or session.revoked_at is not None or now >= session.expires_at:
        return None
    return session


async def revoke(db: AsyncSession, session_id: int, *, actor: str, ip: str | None = None) -> None:
    await repo.revoke_session(db, session_id, clock.now())
    await audit.record(
        db, actor=actor, action="session.revoked", ip=ip, data={"session_id": session_id}
    )


async def revoke_all(
    db: AsyncSession,
    user_id: int,
    *,
    actor: str,
    except_session_id: int | None = None,
    workspace_id: int | None = None,
    ip: str | None = None,
    reason: str | None = None,
) -> int:
    """Revoke every live session of ``user_id`` (only those bound to ``workspace_id`` when
    given; all but ``except_session_id`` when given). Returns how many were revoked."""
    count = await repo.revoke_sessions_of(
        db, user_id, clock.now(), workspace_id=workspace_id, except_id=except_session_id
    )
    await audit.record(
        db,
        actor=actor,
        action="session.revoked_all",
        subject=f"user:{user_id}",
        ip=ip,
        reason=reason,
        data={"count": count, "workspace_id": workspace_id, "kept": except_session_id},
    )
    return count


async def switch_workspace(db: AsyncSession, session_id: int, workspace_id: int | None) -> None:
    """Bind a session to a workspace (the caller checks membership first)."""
    await repo.set_session_workspace(db, session_id, workspace_id)


@dataclass
class SessionInfo:
    id: int
    device: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool


async def list_sessions(
    db: AsyncSession, user_id: int, current_session_id: int | None
) -> list[SessionInfo]:
    rows = await repo.live_sessions_of(db, user_id, clock.now())
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    now = clock.now()
    return [
        SessionInfo(
            id=s.id,
            device=describe_user_agent(s.user_agent),
            ip=s.ip_truncated,
            created_at=s.created_at,
            last_seen_at=s.last_seen_at,
            current=s.id == current_session_id,
        )
        for s in rows
        if now - s.last_seen_at <= idle
    ]


async def revoke_own(
    db: AsyncSession, user_id: int, session_id: int, *, ip: str | None = None
) -> None:
    session = await repo.session_of_user(db, user_id, session_id)
    if session is None or session.revoked_at is not None:
        raise NotFound(f"You have no active session {session_id}; it may have ended already.")
    await revoke(db, session_id, actor=f"user:{user_id}", ip=ip)


_BROWSERS = [
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/")),
    ("curl", re.compile(r"^curl/")),
    ("Python", re.compile(r"python-httpx|python-requests|aiohttp")),
]
_SYSTEMS = [
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("Linux", re.compile(r"Linux|X11")),
]


def describe_user_agent(user_agent: str | None) -> str:
    """ "Firefox on Linux" from a User-Agent header (browser and system only)."""
    if not user_agent:
        return "Unknown device"
    browser = next((name for name, rx in _BROWSERS if rx.search(user_agent)), None)
    system = next((name for name, rx in _SYSTEMS if rx.search(user_agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"
