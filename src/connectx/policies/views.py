"""Policy pages: the privacy policy and the terms (current and earlier versions), and the page
that asks a signed-in person to accept a material change."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, optional_principal, require_user
from connectx.cookies.service import gpc_requested
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.policies import service
from connectx.web.flash import set_flash
from connectx.web.navigation import redirect, safe_next
from connectx.web.render import render

router = APIRouter(dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")
WHO = Depends(optional_principal)


def _person(principal: Principal | None) -> Principal | None:
    return principal if principal is not None and principal.user_id is not None else None


async def _document(
    request: Request, principal: Principal | None, kind: str, version: service.Version
) -> HTMLResponse:
    versions = await service.versions(kind)
    return render(
        request,
        "web/privacy.html",
        principal=_person(principal),
        policy=version.document,
        version=version,
        current=versions[-1],
        kind=service.KINDS[kind],
        earlier=len(versions) > 1,
        gpc=gpc_requested(request),
    )


async def _versions(request: Request, principal: Principal | None, kind: str) -> HTMLResponse:
    items = await service.versions(kind)
    return render(
        request,
        "policies/versions.html",
        principal=_person(principal),
        kind=service.KINDS[kind],
        versions=list(reversed(items)),
    )


@router.get("/privacy", response_class=HTMLResponse)
async def privacy(request: Request, principal: Principal | None = WHO) -> HTMLResponse:
    return await _document(request, principal, "privacy", await service.current("privacy"))


@router.get("/privacy/versions", response_class=HTMLResponse)
async def privacy_versions(request: Request, principal: Principal | None = WHO) -> HTMLResponse:
    return await _versions(request, principal, "privacy")


@router.get("/privacy/versions/{effective_on}", response_class=HTMLResponse)
async def privacy_version(
    request: Request, effective_on: str, principal: Principal | None = WHO
) -> HTMLResponse:
    version = await service.version_on("privacy", effective_on)
    return await _document(request, principal, "privacy", version)


@router.get("/terms", response_class=HTMLResponse)
async def terms(request: Request, principal: Principal | None = WHO) -> HTMLResponse:
    return await _document(request, principal, "terms", await service.current("terms"))


@router.get("/terms/versions", response_class=HTMLResponse)
async def terms_versions(request: Request, principal: Principal | None = WHO) -> HTMLResponse:
    return await _versions(request, principal, "terms")


@router.get("/terms/versions/{effective_on}", response_class=HTMLResponse)
async def terms_version(
    request: Request, effective_on: str, principal: Principal | None = WHO
) -> HTMLResponse:
    return await _document(
        request, principal, "terms", await service.version_on("terms", effective_on)
    )


@router.get("/policies/accept", response_class=HTMLResponse)
async def accept_page(
    request: Request,
    next: str = "",
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    assert principal.user_id is not None
    due = await service.due_for(db, principal.user_id)
    if not due:
        return redirect(safe_next(next))
    return render(
        request,
        "policies/accept.html",
        principal=principal,
        due=due,
        kinds=service.KINDS,
        next=safe_next(next, default=""),
    )


@router.post("/policies/accept", response_class=HTMLResponse)
async def accept(
    request: Request,
    next: str = Form(""),
    agree: str | None = Form(None),
    principal: Principal = Depends(require_user),
    db: AsyncSession = DB,
) -> Response:
    assert principal.user_id is not None
    due = await service.due_for(db, principal.user_id)
    if due and not agree:
        return render(
            request,
            "policies/accept.html",
            {"principal": principal},
            status_code=422,
            due=due,
            kinds=service.KINDS,
            next=safe_next(next, default=""),
            error="Tick the box to confirm you have read and accept the updated documents, "
            "or sign out.",
        )
    accepted = await service.accept(db, principal.user_id, ip=principal.ip)
    response = redirect(safe_next(next))
    if accepted:
        set_flash(response, "Thank you. Your acceptance is recorded.")
    return response
