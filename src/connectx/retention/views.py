"""Retention pages: the public schedule (a privacy page) and a workspace's own periods."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, optional_principal
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.kit.errors import DomainError, InvalidInput
from connectx.kit.numbers import is_digits
from connectx.retention import holds, schedule
from connectx.web.flash import set_flash
from connectx.web.navigation import redirect
from connectx.web.render import render
from connectx.workspaces.access import MANAGERS, allow, is_manager

router = APIRouter(dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")
member = allow("read")
manager = allow("admin", *MANAGERS)


def _person(principal: Principal | None) -> Principal | None:
    return principal if principal is not None and principal.user_id is not None else None


@router.get("/privacy/retention", response_class=HTMLResponse)
async def public_schedule(
    request: Request, principal: Principal | None = Depends(optional_principal)
) -> HTMLResponse:
    return render(
        request,
        "retention/schedule.html",
        principal=_person(principal),
        **schedule.page_context(),
    )


async def _workspace_page(
    request: Request, db: AsyncSession, principal: Principal, status_code: int = 200, **ctx: Any
) -> Response:
    from connectx.workspaces import service as workspaces

    assert principal.workspace_id is not None
    manager = is_manager(principal)
    return render(
        request,
        "retention/workspace.html",
        {"principal": principal},
        status_code=status_code,
        workspace=await workspaces.current(db, principal),
        items=await schedule.workspace_schedule(db, principal.workspace_id),
        manager=manager,
        holds=await holds.workspace_holds(db, principal) if manager else [],
        **ctx,
    )


@router.get("/workspace/retention", response_class=HTMLResponse)
async def workspace_page(
    request: Request, principal: Principal = Depends(member), db: AsyncSession = DB
) -> Response:
    return await _workspace_page(request, db, principal)


@router.post("/workspace/retention", response_class=HTMLResponse)
async def save_period(
    request: Request,
    retention_class: str = Form(""),
    days: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    try:
        text = days.strip()
        if text and not is_digits(text):
            raise InvalidInput("Enter a whole number of days, or leave it empty.", field="days")
        await schedule.set_workspace_period(
            db, principal, retention_class, int(text) if text else None
        )
    except DomainError as exc:
        await db.rollback()
        return await _workspace_page(
            request, db, principal, exc.status, error=exc.detail, failed_class=retention_class
        )
    response = redirect("/workspace/retention")
    set_flash(response, "Retention period saved." if days.strip() else "Default period restored.")
    return response


@router.post("/workspace/retention/holds", response_class=HTMLResponse)
async def place_hold(
    request: Request,
    contact_id: str = Form(""),
    reason: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    try:
        text = contact_id.strip()
        if text and not is_digits(text):
            raise InvalidInput(
                "Enter the contact's number (its id), or leave it empty to hold the workspace.",
                field="contact_id",
            )
        hold = await holds.place_workspace_hold(
            db, principal, contact_id=int(text) if text else None, reason=reason
        )
    except DomainError as exc:
        await db.rollback()
        return await _workspace_page(request, db, principal, exc.status, hold_error=exc.detail)
    response = redirect("/workspace/retention")
    set_flash(response, f"Legal hold {hold.id} placed.")
    return response


@router.post("/workspace/retention/holds/{hold_id}/release", response_class=HTMLResponse)
async def release_hold(
    request: Request, hold_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    try:
        await holds.release_workspace_hold(db, principal, hold_id)
    except DomainError as exc:
        await db.rollback()
        return await _workspace_page(request, db, principal, exc.status, hold_error=exc.detail)
    response = redirect("/workspace/retention")
    set_flash(response, f"Legal hold {hold_id} released.")
    return response
