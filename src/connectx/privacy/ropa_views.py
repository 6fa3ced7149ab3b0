"""``/workspace/record-of-processing``: the record of processing as a page for a workspace's
owners and admins (the same document as ``connectx privacy ropa`` and the JSON API)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.db.session import db_session
from connectx.privacy import ropa
from connectx.web.render import render
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter()
managers = allow("admin", *MANAGERS)


def fields_by_table(columns: list[str]) -> dict[str, list[str]]:
    """A category's fields (``table.column``) by table, in the record's order: listed compactly
    on the page, one line a table."""
    tables: dict[str, list[str]] = {}
    for field in columns:
        table, column = field.split(".", 1)
        tables.setdefault(table, []).append(column)
    return tables


@router.get("/workspace/record-of-processing", response_class=HTMLResponse)
async def record_page(
    request: Request,
    principal: Principal = Depends(managers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> HTMLResponse:
    from connectx.workspaces import service as workspaces

    doc = ropa.build()
    return render(
        request,
        "privacy/ropa.html",
        {"principal": principal},
        workspace=await workspaces.current(db, principal),
        manager=True,
        active="ropa",
        doc=doc,
        fields={c["category"]: fields_by_table(c["columns"]) for c in doc["categories"]},
    )
