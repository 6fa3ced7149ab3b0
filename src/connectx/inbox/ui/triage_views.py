"""The inbox's triage controls as htmx fragments: assign, snooze, labels, internal notes,
canned responses for ``/shortcut``, the notification bell (with the e-mail preference) and the
contact panel's attributes. Thin: :mod:`connectx.inbox.ui.triage` holds the logic."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.inbox import notifications, reads
from connectx.inbox.ui import screens, triage
from connectx.inbox.ui.views import DB, fragment, reader, writer
from connectx.kit.csrf import csrf_protect

router = APIRouter(dependencies=[Depends(csrf_protect)])


async def _head(
    request: Request, db: AsyncSession, principal: Principal, cid: int, opened: str = ""
) -> HTMLResponse:
    thread = await screens.thread(db, principal, cid, with_messages=False)
    return fragment(request, "inbox/_thread_head.html", thread=thread, opened=opened)


@router.post("/inbox/c/{conversation_id}/assign", response_class=HTMLResponse)
async def assign(
    request: Request,
    conversation_id: int,
    to: str = Form("pick", description="me, nobody or pick"),
    user_id: str = Form(""),
    team_id: str = Form(""),
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    await triage.assign(db, principal, conversation_id, to, user_id, team_id)
    return await _head(request, db, principal, conversation_id)


@router.post("/inbox/c/{conversation_id}/snooze", response_class=HTMLResponse)
async def snooze(
    request: Request,
    conversation_id: int,
    minutes: str = Form(""),
    until: str = Form("", description="A chosen time, ISO 8601 with its zone."),
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    await triage.snooze(db, principal, conversation_id, minutes, until)
    return await _head(request, db, principal, conversation_id)


@router.post("/inbox/c/{conversation_id}/labels", response_class=HTMLResponse)
async def label(
    request: Request,
    conversation_id: int,
    label_id: int = Form(...),
    on: str = Form(""),
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    await triage.set_label(db, principal, conversation_id, label_id, bool(on))
    # The labels menu stays open: agents often set more than one.
    return await _head(request, db, principal, conversation_id, opened="label-menu")


@router.post("/inbox/c/{conversation_id}/notes", response_class=HTMLResponse)
async def add_note(
    request: Request,
    conversation_id: int,
    body: str = Form(""),
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    note = await triage.add_note(db, principal, conversation_id, body)
    return fragment(request, "inbox/_note.html", n=note)


@router.get("/inbox/c/{conversation_id}/notes/{note_id}", response_class=HTMLResponse)
async def one_note(
    request: Request,
    conversation_id: int,
    note_id: int,
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    note = await triage.one_note(db, principal, conversation_id, note_id)
    return fragment(request, "inbox/_note.html", n=note)


@router.get("/inbox/canned", response_class=HTMLResponse)
async def canned_options(
    request: Request,
    text: str = Query("", max_length=4096),
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    """The saved replies matching the composer's ``/sho…`` (empty otherwise)."""
    assert principal.workspace_id is not None
    found = await triage.canned_matches(db, principal.workspace_id, text)
    return fragment(request, "inbox/_canned_options.html", found=found, typed=text.strip())


@router.get("/inbox/bell", response_class=HTMLResponse)
async def bell(
    request: Request, principal: Principal = Depends(reader), db: AsyncSession = DB
) -> HTMLResponse:
    return fragment(request, "inbox/_bell.html", bell=await triage.bell(db, principal))


@router.get("/inbox/counts", response_class=HTMLResponse)
async def counts(
    request: Request, principal: Principal = Depends(reader), db: AsyncSession = DB
) -> HTMLResponse:
    """Unread conversations: mine, unassigned, all (loaded after the page, refreshed on events,
    so the list itself never waits for the count)."""
    found = await reads.counts(db, principal) if principal.user_id is not None else None
    return fragment(request, "inbox/_counts.html", counts=found, placeholder=False)


@router.post("/inbox/notifications/read", response_class=HTMLResponse)
async def read_all(
    request: Request, principal: Principal = Depends(reader), db: AsyncSession = DB
) -> HTMLResponse:
    await notifications.mark_all_read(db, principal)
    return fragment(request, "inbox/_bell.html", bell=await triage.bell(db, principal), opened=True)


@router.post("/inbox/preferences", response_class=HTMLResponse)
async def preferences(
    request: Request,
    email_on_assignment: str = Form(""),
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    await notifications.set_preferences(
        db, principal, email_on_assignment=bool(email_on_assignment)
    )
    return fragment(request, "inbox/_bell.html", bell=await triage.bell(db, principal), opened=True)


@router.post("/inbox/c/{conversation_id}/attributes", response_class=HTMLResponse)
async def attributes(
    request: Request,
    conversation_id: int,
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    await screens.conversation(db, principal, conversation_id)  # 404 before reading the form
    changes = triage.attribute_changes(await request.form())
    await screens.update_attributes(db, principal, conversation_id, changes)
    side = await screens.side_panel(db, principal, conversation_id)
    return fragment(request, "inbox/_panel.html", side=side, saved=True)
