"""``/api/v1/workspace/record-of-processing``: the record of processing (``connectx privacy
ropa``) for a workspace's owners and admins (API keys with the ``admin`` scope). It is generated
from the data inventory's declarations and holds no personal data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from connectx.accounts.caller import Principal
from connectx.kit.errors import InvalidInput
from connectx.privacy import ropa
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(prefix="/api/v1/workspace/record-of-processing", tags=["privacy"])
managers = allow("admin", *MANAGERS)


@router.get("", summary="The record of processing (JSON, or Markdown with format=markdown)")
async def record_of_processing(
    format: str = Query("json", description="json or markdown."),
    principal: Principal = Depends(managers),
) -> Any:
    if format not in ("json", "markdown"):
        raise InvalidInput("format is json or markdown.", field="format")
    doc = ropa.build()
    if format == "markdown":
        return PlainTextResponse(ropa.render_markdown(doc), media_type="text/markdown")
    return doc
