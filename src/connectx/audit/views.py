"""The audit log page of a workspace (owners and admins): filters, pages, export links."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import browse
from connectx.db.session import db_session
from connectx.kit.errors import DomainError
from connectx.models.audit import AuditEvent
from connectx.web.render import render
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter()
managers = allow("admin", *MANAGERS)
EXPORT = "/api/v1/workspace/audit/export"


@router.get("/workspace/audit")
async def audit_page(
    request: Request,
    principal: Principal = Depends(managers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> Response:
    q = request.query_params
    form = {k: q.get(k, "") for k in ("actor", "subject", "action", "since", "until")}
    error: str | None = None
    rows: list[AuditEvent] = []
    next_cursor: str | None = None
    status = 200
    try:
        f = browse.filters(**form)
        rows, next_cursor = await browse.page(db, principal, f, q.get("cursor") or None)
    except DomainError as exc:
        error, status = exc.detail, exc.status
    filled = {k: v for k, v in form.items() if v}
    return render(
        request,
        "audit/log.html",
        {
            "principal": principal,
            "manager": True,
            "form": form,
            "error": error,
            "entries": [browse.as_dict(r) for r in rows],
            "older": f"/workspace/audit?{urlencode({**filled, 'cursor': next_cursor})}"
            if next_cursor
            else None,
            "export_csv": f"{EXPORT}?{urlencode({**filled, 'format': 'csv'})}",
            "export_json": f"{EXPORT}?{urlencode({**filled, 'format': 'json'})}",
        },
        status_code=status,
    )
