"""The agent inbox (``/inbox``): the page, and the htmx fragments it swaps.

A full page for direct visits (``/inbox``, ``/inbox/c/{id}``); the same URLs answer htmx requests
with just the part they replace. Errors of htmx requests are problem+json, shown by ``app.js`` in
the page's notice area (never hidden). Thin: :mod:`connectx.inbox.ui.screens` holds the logic.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile as StarletteUpload

from connectx.accounts.caller import Principal
from connectx.channels import repository as channels_repo
from connectx.db.session import db_session
from connectx.inbox import labels, reads
from connectx.inbox.ui import presenter
from connectx.inbox.ui import screens as service
from connectx.kit.csrf import csrf_protect
from connectx.kit.errors import InvalidInput
from connectx.kit.numbers import is_digits
from connectx.models.conversation import STATUSES
from connectx.outbound.service import MEDIA_LIMITS
from connectx.realtime.endpoints import head_id
from connectx.web.render import render
from connectx.web.templating import templates
from connectx.workspaces.access import allow, is_manager

router = APIRouter(dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")
reader = allow("read", "owner", "admin", "agent")
writer = allow("write", "owner", "admin", "agent")

MAX_UPLOAD = max(MEDIA_LIMITS.values())
EMOJI = ("👍", "❤️", "😂", "😮", "😢", "🙏")
# The reaction picker's buttons, the same under every customer message: built once, not six
# escaped loop turns per message per page.
REACT_BUTTONS = Markup(  # noqa: S704 - built from escaped constants
    "".join(
        f'<button class="emoji" name="emoji" value="{escape(e)}" '
        f'aria-label="React {escape(e)}">{escape(e)}</button>'
        for e in EMOJI
    )
)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )


def fragment(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    """A template without the layout (for htmx swaps)."""
    return templates.TemplateResponse(
        request, template, {"react_buttons": REACT_BUTTONS, **ctx}, status_code=status_code
    )


def _filters(
    status: str | None,
    channel: int | None,
    view: str = "all",
    q: str | None = None,
    unread: bool = False,
    label: int | None = None,
) -> dict[str, Any]:
    if status not in (None, "", "all", *STATUSES):
        raise InvalidInput(f"status is one of all, {', '.join(STATUSES)}.", field="status")
    return {
        "status": None if status in (None, "", "all") else status,
        "channel": channel,
        "view": view or "all",
        "q": (q or "").strip(),
        "unread": unread,
        "label": label,
    }


def _query(filters: dict[str, Any], cursor: str | None) -> str:
    """The list's URL query for ``filters`` (and the next page's ``cursor``). Filters that are
    not set are left out: an empty ``channel=`` or ``unread=`` is refused (422)."""
    query = {
        "status": filters["status"] or "all",
        "channel": filters["channel"],
        "view": filters["view"],
        "q": filters["q"],
        "unread": "true" if filters["unread"] else None,
        "label": filters["label"],
        "cursor": cursor,
    }
    return urlencode({k: v for k, v in query.items() if v not in (None, "")})


async def _page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    conversation_id: int | None,
    filters: dict[str, Any],
) -> HTMLResponse:
    # The page's snapshot id is taken before reading, so an event committed while the page is
    # rendered is replayed by the stream (at worst shown twice, deduplicated), never lost.
    assert principal.workspace_id is not None
    since = await head_id(request, principal.workspace_id)
    # Read once per page: the labels are handed to the list or the thread and its triage
    # controls (each would otherwise read them again); the numbers are in the session's identity
    # map when the thread asks for its own. The bell loads after the page (hx-trigger="load").
    every_label = await labels.list_all(db, principal.workspace_id)
    numbers = await channels_repo.list_in_workspace(
        db, principal.workspace_id, include_disconnected=False
    )
    rows: list[service.Row] | None = None
    cursor = None
    thread = None
    if conversation_id:
        # A conversation opened directly (a link, a reload): the thread is what was asked for;
        # the list loads right after the page (hx-trigger="load"), as the counts and bell do.
        thread = await service.thread(db, principal, conversation_id, every_label=every_label)
        await _mark_read(db, principal, conversation_id)
    else:
        rows, cursor = await service.list_rows(
            db, principal, cursor=None, every_label=every_label, **_list_args(filters)
        )
    return render(
        request,
        "inbox/page.html",
        principal=principal,
        rows=rows,
        cursor=cursor,
        filters=filters,
        thread=thread,
        react_buttons=REACT_BUTTONS,
        statuses=STATUSES,
        events_url=f"/api/v1/events?{urlencode({'since': since})}",
        more_query=_query(filters, cursor) if cursor else "",
        list_query=_query(filters, None),
        bell_later=principal.user_id is not None,
        manager=is_manager(principal),
        labels=every_label,
        numbers=numbers,
    )


async def _mark_read(db: AsyncSession, principal: Principal, conversation_id: int) -> None:
    """Opening a conversation reads it (for this member; API keys have no markers)."""
    if principal.user_id is not None:
        await reads.mark_read(db, principal, conversation_id)


def _list_args(filters: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": filters["status"],
        "channel_id": filters["channel"],
        "view": filters["view"],
        "q": filters["q"],
        "unread": filters["unread"],
        "label_id": filters["label"],
    }


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(
    request: Request,
    status: str | None = Query("open"),
    channel: int | None = Query(None),
    view: str = Query("all", description="all, mine or unassigned"),
    q: str | None = Query(None, description="A name or a number."),
    unread: bool = Query(False),
    label: int | None = Query(None),
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    filters = _filters(status, channel, view, q, unread, label)
    return await _page(request, db, principal, None, filters)


@router.get("/inbox/list", response_class=HTMLResponse)
async def conversation_list(
    request: Request,
    status: str | None = Query("open"),
    channel: int | None = Query(None),
    view: str = Query("all", description="all, mine or unassigned"),
    q: str | None = Query(None, description="A name or a number."),
    unread: bool = Query(False),
    label: int | None = Query(None),
    cursor: str | None = Query(None),
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    """The list's rows (a filter change replaces them; "Load more" appends the next page)."""
    filters = _filters(status, channel, view, q, unread, label)
    rows, next_cursor = await service.list_rows(db, principal, cursor=cursor, **_list_args(filters))
    return fragment(
        request,
        "inbox/_rows.html",
        rows=rows,
        cursor=next_cursor,
        filters=filters,
        more=cursor,
        more_query=_query(filters, next_cursor) if next_cursor else "",
    )


@router.get("/inbox/c/{conversation_id}", response_class=HTMLResponse)
async def conversation(
    request: Request,
    conversation_id: int,
    status: str | None = Query("open"),
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    if not _is_htmx(request):
        return await _page(request, db, principal, conversation_id, _filters(status, None))
    thread = await service.thread(db, principal, conversation_id)
    await _mark_read(db, principal, conversation_id)
    return fragment(request, "inbox/_thread.html", thread=thread, csrf_token=principal.csrf_token)


@router.get("/inbox/c/{conversation_id}/row", response_class=HTMLResponse)
async def conversation_row(
    request: Request,
    conversation_id: int,
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    row = await service.row(db, principal, conversation_id)
    return fragment(request, "inbox/_row.html", row=row)


@router.get("/inbox/c/{conversation_id}/older", response_class=HTMLResponse)
async def older(
    request: Request,
    conversation_id: int,
    cursor: str = Query(...),
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    thread = await service.thread(db, principal, conversation_id, cursor)
    return fragment(request, "inbox/_older.html", thread=thread)


@router.get("/inbox/c/{conversation_id}/m/{message_id}", response_class=HTMLResponse)
async def one_message(
    request: Request,
    conversation_id: int,
    message_id: int,
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    bubble = await service.one_message(db, principal, conversation_id, message_id)
    if bubble is None:
        return HTMLResponse("", status_code=204)
    return fragment(request, "inbox/_bubble_one.html", m=bubble, conversation_id=conversation_id)


async def _sent(
    request: Request, db: AsyncSession, principal: Principal, conversation_id: int, sent: Any
) -> HTMLResponse:
    bubble = await service.one_message(db, principal, conversation_id, sent.message.id)
    if bubble is None:
        return HTMLResponse("", status_code=204)
    return fragment(request, "inbox/_bubble_one.html", m=bubble, conversation_id=conversation_id)


@router.post("/inbox/c/{conversation_id}/messages", response_class=HTMLResponse)
async def send_text(
    request: Request,
    conversation_id: int,
    text: str = Form(""),
    reply_to: str = Form(""),
    idempotency_key: str = Form(""),
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    sent = await service.send_text(
        db, principal, conversation_id, text, reply_to or None, idempotency_key or None
    )
    return await _sent(request, db, principal, conversation_id, sent)


@router.post("/inbox/c/{conversation_id}/attachments", response_class=HTMLResponse)
async def send_attachment(
    request: Request,
    conversation_id: int,
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    # Read by hand (not File(...)) so a missing file is a message a person can act on.
    await service.conversation(db, principal, conversation_id)
    form = await request.form(max_part_size=MAX_UPLOAD + 1)
    file = form.get("file")
    caption = str(form.get("caption") or "")
    idempotency_key = str(form.get("idempotency_key") or "")
    if not isinstance(file, StarletteUpload):
        raise InvalidInput("Choose a file to send.", field="file")
    data = await file.read(MAX_UPLOAD + 1)
    if not data:
        raise InvalidInput("The file is empty.", field="file")
    if len(data) > MAX_UPLOAD:
        raise InvalidInput(f"Files may be up to {MAX_UPLOAD // 2**20} MB.", field="file")
    sent = await service.send_attachment(
        db,
        principal,
        conversation_id,
        base64.b64encode(data).decode(),
        file.content_type or "application/octet-stream",
        file.filename or "",
        caption,
        idempotency_key or None,
    )
    return await _sent(request, db, principal, conversation_id, sent)


@router.post("/inbox/c/{conversation_id}/m/{message_id}/react", response_class=HTMLResponse)
async def react(
    request: Request,
    conversation_id: int,
    message_id: int,
    emoji: str = Form(""),
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    await service.react(db, principal, conversation_id, message_id, emoji)
    bubble = await service.one_message(db, principal, conversation_id, message_id)
    return fragment(request, "inbox/_bubble_one.html", m=bubble, conversation_id=conversation_id)


@router.post("/inbox/c/{conversation_id}/m/{message_id}/retry", response_class=HTMLResponse)
async def retry(
    request: Request,
    conversation_id: int,
    message_id: int,
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    sent = await service.retry(db, principal, conversation_id, message_id)
    return await _sent(request, db, principal, conversation_id, sent)


# -- templates (outside the 24-hour window) ---------------------------------------------------


def _params(form: Any, prefix: str) -> dict[str, str]:
    return {
        str(k)[len(prefix) :]: str(v).strip()
        for k, v in form.multi_items()
        if str(k).startswith(prefix) and isinstance(v, str)
    }


@router.get("/inbox/c/{conversation_id}/template", response_class=HTMLResponse)
async def template_fields(
    request: Request,
    conversation_id: int,
    key: str = Query(""),
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    await service.conversation(db, principal, conversation_id)
    if not key:
        return HTMLResponse("")
    form = await service.template_for(db, principal, conversation_id, key)
    shown = presenter.template_preview(form, {}, {}, {})
    return fragment(
        request,
        "inbox/_template_fields.html",
        form=form,
        preview=shown,
        conversation_id=conversation_id,
    )


@router.post("/inbox/c/{conversation_id}/template/preview", response_class=HTMLResponse)
async def template_preview(
    request: Request,
    conversation_id: int,
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    data = await request.form()
    key = str(data.get("key") or "")
    await service.conversation(db, principal, conversation_id)
    if not key:
        return HTMLResponse("")
    form = await service.template_for(db, principal, conversation_id, key)
    buttons = {int(k): v for k, v in _params(data, "button.").items() if is_digits(k)}
    shown = presenter.template_preview(
        form, _params(data, "header."), _params(data, "body."), buttons
    )
    return fragment(request, "inbox/_template_preview.html", preview=shown)


@router.post("/inbox/c/{conversation_id}/template", response_class=HTMLResponse)
async def send_template(
    request: Request,
    conversation_id: int,
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    data = await request.form()
    buttons = {int(k): v for k, v in _params(data, "button.").items() if is_digits(k)}
    sent = await service.send_template(
        db,
        principal,
        conversation_id,
        str(data.get("key") or ""),
        _params(data, "header."),
        _params(data, "body."),
        buttons,
        str(data.get("idempotency_key") or "") or None,
    )
    return await _sent(request, db, principal, conversation_id, sent)


# -- conversation state -----------------------------------------------------------------------


@router.post("/inbox/c/{conversation_id}/status", response_class=HTMLResponse)
async def set_status(
    request: Request,
    conversation_id: int,
    status: str = Form(...),
    principal: Principal = Depends(writer),
    db: AsyncSession = DB,
) -> HTMLResponse:
    await service.set_status(db, principal, conversation_id, status)
    thread = await service.thread(db, principal, conversation_id, with_messages=False)
    return fragment(request, "inbox/_thread_head.html", thread=thread)


@router.get("/inbox/c/{conversation_id}/head", response_class=HTMLResponse)
async def head(
    request: Request,
    conversation_id: int,
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    thread = await service.thread(db, principal, conversation_id, with_messages=False)
    return fragment(request, "inbox/_thread_head.html", thread=thread)


@router.get("/inbox/c/{conversation_id}/composer", response_class=HTMLResponse)
async def composer(
    request: Request,
    conversation_id: int,
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    thread = await service.thread(db, principal, conversation_id, with_messages=False)
    return fragment(request, "inbox/_composer.html", thread=thread)


@router.get("/inbox/c/{conversation_id}/panel", response_class=HTMLResponse)
async def panel(
    request: Request,
    conversation_id: int,
    principal: Principal = Depends(reader),
    db: AsyncSession = DB,
) -> HTMLResponse:
    side = await service.side_panel(db, principal, conversation_id)
    return fragment(request, "inbox/_panel.html", side=side)
