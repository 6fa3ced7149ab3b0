"""HTML pages of workspaces: overview and switcher, profile, members and invitations, API keys,
and the invitation link's landing page. Thin: services hold the logic.

Forms post back and redirect (303) with a flash message; a form with a mistake is shown again with
the message and what was typed. Errors on other actions (404, 403, 409) render the error page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, optional_principal, require_user
from connectx.db.session import db_session
from connectx.kit import clock
from connectx.kit.csrf import csrf_protect
from connectx.kit.errors import DomainError
from connectx.web.flash import set_flash
from connectx.web.navigation import redirect
from connectx.web.render import render
from connectx.workspaces import api_keys, invitations
from connectx.workspaces import service as workspaces
from connectx.workspaces.access import MANAGERS, ROLES, SCOPES, allow, is_manager

# Every state change from a cookie session carries the CSRF token (forms: hidden csrf_token).
router = APIRouter(dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")

member = allow("read")
manager = allow("admin", *MANAGERS)


def _done(url: str, message: str) -> Response:
    response = redirect(url)
    set_flash(response, message)
    return response


def _page(
    request: Request, template: str, principal: Principal, status_code: int = 200, **ctx: Any
) -> Response:
    return render(
        request,
        f"workspaces/{template}",
        {"principal": principal, "roles": ROLES, "scopes": SCOPES, **ctx},
        status_code=status_code,
    )


# -- overview, create, switch -----------------------------------------------------------------


async def _overview(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    status_code: int = 200,
    **ctx: Any,
) -> Response:
    assert principal.user_id is not None
    mine = await workspaces.workspaces_of(db, principal.user_id)
    ws = await workspaces.current(db, principal) if principal.workspace_id else None
    return _page(
        request,
        "overview.html",
        principal,
        status_code,
        workspace=ws,
        mine=mine,
        invited=await invitations.for_me(db, principal),
        manager=is_manager(principal),
        **ctx,
    )


@router.get("/workspace")
async def overview(
    request: Request, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> Response:
    return await _overview(request, db, principal)


@router.post("/workspace")
async def create(
    request: Request,
    name: str = Form(""),
    address: str = Form(""),
    phone: str = Form(""),
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    assert principal.user_id is not None
    try:
        await workspaces.create_workspace(
            db, principal, owner_user_id=principal.user_id, name=name, address=address, phone=phone
        )
    except DomainError as exc:
        form = {"name": name, "address": address, "phone": phone}
        return await _overview(
            request, db, principal, exc.status, create_error=exc.detail, create_form=form
        )
    return _done("/workspace", "Workspace created. You are its owner.")


@router.post("/invitations/{invitation_id}/accept")
async def accept_mine(
    invitation_id: int, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> Response:
    await invitations.accept_mine(db, principal, invitation_id)
    ws = await workspaces.current(db, principal)
    return _done("/workspace", f"Welcome to {ws.name}!")


@router.post("/workspace/switch")
async def switch(
    workspace_id: int = Form(...),
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    ws = await workspaces.switch(db, principal, workspace_id)
    return _done("/workspace", f"Switched to {ws.name}.")


# -- settings (profile) -----------------------------------------------------------------------


@router.get("/workspace/settings")
async def settings_page(
    request: Request, principal: Principal = Depends(member), db: AsyncSession = DB
) -> Response:
    ws = await workspaces.current(db, principal)
    form = {"name": ws.name, "address": ws.address or "", "phone": ws.phone or ""}
    return _page(
        request,
        "settings.html",
        principal,
        workspace=ws,
        form=form,
        manager=is_manager(principal),
    )


@router.post("/workspace/settings")
async def save_settings(
    request: Request,
    name: str = Form(""),
    address: str = Form(""),
    phone: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    form = {"name": name, "address": address, "phone": phone}
    try:
        await workspaces.update_profile(db, principal, form)
    except DomainError as exc:
        ws = await workspaces.current(db, principal)
        return _page(
            request,
            "settings.html",
            principal,
            exc.status,
            workspace=ws,
            form=form,
            error=exc.detail,
            manager=True,
        )
    return _done("/workspace/settings", "Business profile saved.")


# -- members and invitations ------------------------------------------------------------------


async def _members_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    status_code: int = 200,
    **ctx: Any,
) -> Response:
    ws = await workspaces.current(db, principal)
    manage = is_manager(principal)
    pending = await invitations.list_invitations(db, principal) if manage else []
    return _page(
        request,
        "members.html",
        principal,
        status_code,
        workspace=ws,
        members=await workspaces.list_members(db, principal),
        invitations=pending,
        manager=manage,
        is_owner=principal.role == "owner",
        invite_form=ctx.pop("invite_form", {"email": "", "role": "agent"}),
        **ctx,
    )


@router.get("/workspace/members")
async def members_page(
    request: Request, principal: Principal = Depends(member), db: AsyncSession = DB
) -> Response:
    return await _members_page(request, db, principal)


@router.post("/workspace/members/{member_id}/role")
async def change_role(
    member_id: int,
    role: str = Form(...),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    await workspaces.change_role(db, principal, member_id, role)
    return _done("/workspace/members", f"Role changed to {role}.")


@router.post("/workspace/members/{member_id}/remove")
async def remove_member(
    member_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    await workspaces.remove_member(db, principal, member_id)
    return _done(
        "/workspace/members",
        "Member removed. Their sessions here and the API keys they created are revoked.",
    )


@router.post("/workspace/invitations")
async def invite(
    request: Request,
    email: str = Form(""),
    role: str = Form("agent"),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    try:
        await invitations.invite(db, principal, email=email, role=role)
    except DomainError as exc:
        return await _members_page(
            request,
            db,
            principal,
            exc.status,
            invite_error=exc.detail,
            invite_form={"email": email, "role": role},
        )
    return _done("/workspace/members", "Invitation sent. The link works for 7 days.")


@router.post("/workspace/invitations/{invitation_id}/revoke")
async def revoke_invitation(
    invitation_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    await invitations.revoke(db, principal, invitation_id)
    return _done("/workspace/members", "Invitation revoked.")


# -- API keys ---------------------------------------------------------------------------------


async def _keys_page(
    request: Request, db: AsyncSession, principal: Principal, status_code: int = 200, **ctx: Any
) -> Response:
    ws = await workspaces.current(db, principal)
    return _page(
        request,
        "api_keys.html",
        principal,
        status_code,
        workspace=ws,
        keys=await api_keys.list_keys(db, principal),
        key_form=ctx.pop("key_form", {"name": "", "scopes": ["read"]}),
        **ctx,
    )


@router.get("/workspace/api-keys")
async def keys_page(
    request: Request, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    return await _keys_page(request, db, principal)


@router.post("/workspace/api-keys")
async def create_key(
    request: Request,
    name: str = Form(""),
    scopes: list[str] = Form(default_factory=list),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    try:
        new = await api_keys.create(db, principal, name=name, scopes=scopes)
    except DomainError as exc:
        return await _keys_page(
            request,
            db,
            principal,
            exc.status,
            key_error=exc.detail,
            key_form={"name": name, "scopes": scopes},
        )
    # Shown on this response only (never redirected with the key, never stored in clear).
    response = await _keys_page(request, db, principal, 201, new_key=new)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/workspace/api-keys/{api_key_id}/revoke")
async def revoke_key(
    api_key_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    await api_keys.revoke(db, principal, api_key_id)
    return _done("/workspace/api-keys", "API key revoked: it no longer works.")


# -- invitation link --------------------------------------------------------------------------


def _accept_page(
    request: Request,
    principal: Principal | None,
    token: str,
    preview: invitations.Preview | None,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    here = f"/invitations/accept?{urlencode({'token': token})}"
    return render(
        request,
        "workspaces/accept.html",
        {
            "principal": principal,
            "token": token,
            "invitation": preview,
            "error": error,
            "signin_url": f"/signin?{urlencode({'next': here})}",
            # /signup takes no address (kept out of URLs); ``next`` is honoured where supported.
            "signup_url": f"/signup?{urlencode({'next': here})}",
            "now": clock.now(),
        },
        status_code=status_code,
    )


@router.get("/invitations/accept")
async def accept_page(
    request: Request,
    token: str = "",
    principal: Principal | None = Depends(optional_principal),
    db: AsyncSession = DB,
) -> Response:
    try:
        preview = await invitations.preview(db, token)
    except DomainError as exc:
        return _accept_page(request, principal, token, None, exc.status, exc.detail)
    response = _accept_page(request, principal, token, preview)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response


@router.post("/invitations/accept")
async def accept(
    request: Request,
    token: str = Form(""),
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    try:
        await invitations.accept(db, principal, token)
    except DomainError as exc:
        try:
            preview: invitations.Preview | None = await invitations.preview(db, token)
        except DomainError:
            preview = None
        return _accept_page(request, principal, token, preview, exc.status, exc.detail)
    return _done("/workspace", "Welcome! You joined the workspace.")
