"""``/inbox/settings``: what owners and admins set up for the inbox (docs/inbox.md): assignment
per number (manual or round-robin, optionally within a team), teams and their members, labels,
and canned responses. Plain forms (they work without JavaScript); each change redirects back
with a one-time message, and a refused one shows the page again with the reason."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.channels import repository as channels_repo
from connectx.db.session import db_session
from connectx.inbox import assignment, canned, labels, teams
from connectx.inbox import repository as inbox_repo
from connectx.inbox.ui import triage
from connectx.kit.csrf import csrf_protect
from connectx.kit.errors import DomainError, InvalidInput
from connectx.web.flash import set_flash
from connectx.web.navigation import redirect
from connectx.web.render import render
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")
manager = allow("admin", *MANAGERS)
PAGE = "/inbox/settings"


async def _page(
    request: Request, db: AsyncSession, principal: Principal, status: int = 200, **ctx: Any
) -> HTMLResponse:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    numbers = await channels_repo.list_in_workspace(db, ws, include_disconnected=False)
    routing = {r.channel_id: r for r in await assignment.routing_of(db, ws)}
    people = await triage.people(db, ws)
    return render(
        request,
        "inbox/settings.html",
        principal=principal,
        numbers=numbers,
        routing=routing,
        teams=await teams.list_with_members(db, ws),
        people=people,
        names={p.user_id: p.name for p in people},
        labels=await labels.list_all(db, ws),
        canned=await canned.search(db, ws, None),
        status_code=status,
        **ctx,
    )


async def _done(
    request: Request, db: AsyncSession, principal: Principal, work: Any, message: str
) -> Response:
    try:
        await work
    except DomainError as exc:
        await db.rollback()
        return await _page(request, db, principal, exc.status, error=exc.detail)
    response = redirect(PAGE)
    set_flash(response, message)
    return response


@router.get(PAGE, response_class=HTMLResponse)
async def settings_page(
    request: Request, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    return await _page(request, db, principal)


@router.post(PAGE + "/routing/{channel_id}", response_class=HTMLResponse)
async def set_routing(
    request: Request,
    channel_id: int,
    mode: str = Form("manual"),
    team_id: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    async def work() -> None:
        assert principal.workspace_id is not None
        await channels_repo.get(db, principal.workspace_id, channel_id)  # 404 before the form
        team = triage.optional_id(team_id, "team_id")
        await assignment.set_routing(db, principal, channel_id, mode, team)

    words = "round-robin" if mode == "round_robin" else "manual"
    return await _done(request, db, principal, work(), f"Assignment for the number: {words}.")


@router.post(PAGE + "/teams", response_class=HTMLResponse)
async def create_team(
    request: Request,
    name: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    return await _done(request, db, principal, teams.create(db, principal, name), "Team created.")


@router.post(PAGE + "/teams/{team_id}/members", response_class=HTMLResponse)
async def team_member(
    request: Request,
    team_id: int,
    user_id: str = Form(""),
    remove: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    async def work() -> None:
        assert principal.workspace_id is not None
        await inbox_repo.team(db, principal.workspace_id, team_id)  # 404 before the form
        who = triage.optional_id(user_id, "user_id")
        if who is None:
            raise InvalidInput("Choose a member.", field="user_id")
        if remove:
            await teams.remove_member(db, principal, team_id, who)
        else:
            await teams.add_member(db, principal, team_id, who)

    message = "Removed from the team." if remove else "Added to the team."
    return await _done(request, db, principal, work(), message)


@router.post(PAGE + "/labels", response_class=HTMLResponse)
async def create_label(
    request: Request,
    name: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    return await _done(
        request, db, principal, labels.create(db, principal, name, None), "Label created."
    )


@router.post(PAGE + "/labels/{label_id}/delete", response_class=HTMLResponse)
async def delete_label(
    request: Request, label_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    return await _done(
        request, db, principal, labels.delete(db, principal, label_id), "Label deleted."
    )


@router.post(PAGE + "/canned", response_class=HTMLResponse)
async def create_canned(
    request: Request,
    shortcut: str = Form(""),
    title: str = Form(""),
    body: str = Form(""),
    principal: Principal = Depends(manager),
    db: AsyncSession = DB,
) -> Response:
    work = canned.create(db, principal, shortcut, title, body)
    return await _done(request, db, principal, work, "Canned response saved.")


@router.post(PAGE + "/canned/{canned_id}/delete", response_class=HTMLResponse)
async def delete_canned(
    request: Request, canned_id: int, principal: Principal = Depends(manager), db: AsyncSession = DB
) -> Response:
    return await _done(
        request, db, principal, canned.delete(db, principal, canned_id), "Canned response deleted."
    )
