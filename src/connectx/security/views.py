"""Pages: your sign-ins and devices (/account/security); a workspace's security notices."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, require_user
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.kit.inventory import Retention
from connectx.privacy.retention_schedule import period_of
from connectx.security import service, suspension
from connectx.security.service import KIND_WORDS
from connectx.web.flash import set_flash
from connectx.web.navigation import redirect
from connectx.web.render import render
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")
manager = allow("admin", *MANAGERS)


@router.get("/account/security", response_class=HTMLResponse)
async def account_security(
    request: Request, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> HTMLResponse:
    assert principal.user_id is not None
    return render(
        request,
        "security/account.html",
        principal=principal,
        sign_ins=await service.recent_sign_ins(db, principal.user_id),
        devices=await service.known_devices(db, principal.user_id, request),
        kept_days=period_of(Retention.USAGE_LOG).days,
    )


@router.get("/workspace/security", response_class=HTMLResponse)
async def workspace_security(
    request: Request, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> HTMLResponse:
    from connectx.accounts import service as accounts
    from connectx.workspaces import service as workspaces

    assert principal.workspace_id is not None
    notices = await service.notices_for(db, principal)
    ids = sorted({int(n.subject.split(":")[1]) for n in notices if n.subject.startswith("user:")})
    names = {f"user:{uid}": p.name for uid, p in (await accounts.profiles(db, ids)).items()}
    return render(
        request,
        "security/workspace.html",
        principal=principal,
        workspace=await workspaces.current(db, principal),
        notices=notices,
        names=names,
        words=KIND_WORDS,
        manager=True,
        suspended=await suspension.current(db, principal.workspace_id),
    )


@router.post("/workspace/security/resolve", response_class=HTMLResponse)
async def resolve(principal: Principal = Depends(manager), db: AsyncSession = DB) -> Response:
    count = await service.resolve_notices(db, principal)
    response = redirect("/workspace/security")
    set_flash(response, f"{count} notice{'s' if count != 1 else ''} marked as reviewed.")
    return response
