"""JSON API: your sign-ins and devices; a workspace's security notices."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, require_user
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.security import service
from connectx.security.schemas import DeviceOut, NoticeOut, Resolved, SignInOut
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(prefix="/api/v1", tags=["security"], dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")
manager = allow("admin", *MANAGERS)


@router.get("/account/sign-ins", response_model=list[SignInOut], summary="Your recent sign-ins")
async def sign_ins(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> list[SignInOut]:
    """Sign-ins (and failed attempts) of your account, newest first, with coarse device data."""
    assert principal.user_id is not None
    return [SignInOut(**asdict(v)) for v in await service.recent_sign_ins(db, principal.user_id)]


@router.get("/account/devices", response_model=list[DeviceOut], summary="Your devices")
async def known_devices(
    request: Request, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> list[DeviceOut]:
    """Devices your account signed in from, newest first (``current``: this browser)."""
    assert principal.user_id is not None
    views = await service.known_devices(db, principal.user_id, request)
    return [DeviceOut(**asdict(v)) for v in views]


@router.get(
    "/workspace/security/notices", response_model=list[NoticeOut], summary="Security notices"
)
async def notices(
    open_only: bool = False, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> list[NoticeOut]:
    """Anomalies flagged for members of this workspace, newest first (owners and admins)."""
    rows = await service.notices_for(db, principal, open_only=open_only)
    return [NoticeOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/workspace/security/notices/resolve", response_model=Resolved, summary="Mark notices reviewed"
)
async def resolve(principal: Principal = Depends(manager), db: AsyncSession = DB) -> Resolved:
    return Resolved(resolved=await service.resolve_notices(db, principal))
