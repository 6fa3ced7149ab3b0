"""``/api/v1/workspace/audit``: the workspace's audit log for owners and admins (API keys with the
``admin`` scope): filtered pages and exports. Reading it is recorded too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import browse
from connectx.db.session import db_session
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(prefix="/api/v1/workspace/audit", tags=["audit"])
DB = Depends(db_session, scope="function")
managers = allow("admin", *MANAGERS)

ACTOR = Query(None, description="Who acted: user:12, api_key:3, system, ...")
SUBJECT = Query(None, description="Whose data: contact:5, user:12, ...")
ACTION = Query(None, description="contact.viewed, or a prefix like contact.*")
SINCE = Query(None, description="From this day (UTC), e.g. 2026-12-01.")
UNTIL = Query(None, description="To the end of this day (UTC).")


class EntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    ip: str | None
    reason: str | None
    data: dict[str, Any]
    hash: str


class EntryPage(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None


@router.get("", response_model=EntryPage, summary="Audit log entries, newest first")
async def list_entries(
    actor: str | None = ACTOR,
    subject: str | None = SUBJECT,
    action: str | None = ACTION,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
    limit: int = Query(browse.PAGE, description=f"1 to {browse.MAX_PAGE}."),
    principal: Principal = Depends(managers),
    db: AsyncSession = DB,
) -> EntryPage:
    f = browse.filters(actor, subject, action, since, until)
    rows, next_cursor = await browse.page(db, principal, f, cursor, limit)
    return EntryPage(
        items=[EntryOut.model_validate(browse.as_dict(r)) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/export",
    summary="Export the matching entries (CSV or JSON; the export is recorded)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
async def export_entries(
    format: str = Query("csv", description="csv or json."),
    actor: str | None = ACTOR,
    subject: str | None = SUBJECT,
    action: str | None = ACTION,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    principal: Principal = Depends(managers),
    db: AsyncSession = DB,
) -> Response:
    f = browse.filters(actor, subject, action, since, until)
    body, media_type, name = await browse.export(db, principal, f, format)
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
