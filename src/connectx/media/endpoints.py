"""``GET /api/v1/messages/{message_id}/media``: a message's media, for the workspace's people
and API keys with the ``read`` scope. Streams the decrypted bytes; never cached."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.db.session import db_session
from connectx.media import service
from connectx.privacy import purpose
from connectx.workspaces.access import allow

purpose.register(
    "media.download", purpose.Use.SERVICE, ["media_files.*"], "connectx.media.endpoints"
)

router = APIRouter(prefix="/api/v1/messages", tags=["media"])

readers = allow("read", "owner", "admin", "agent")


def content_disposition(filename: str, inline: bool) -> str:
    """A header that cannot be broken out of: an ASCII fallback plus the RFC 5987 form."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip() or "media"
    name = "".join(c for c in name if c.isprintable())[:150] or "media"
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in name)
    ascii_name = ascii_name.strip(" .") or "media"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get(
    "/{message_id}/media",
    summary="A message's media file (decrypted)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_media(
    message_id: int,
    principal: Principal = Depends(readers),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> StreamingResponse:
    opened = await service.open_for(db, principal, message_id)
    headers = {
        "Content-Disposition": content_disposition(opened.filename, opened.inline),
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if opened.size:
        headers["Content-Length"] = str(opened.size)
    return StreamingResponse(opened.chunks, media_type=opened.mime_type, headers=headers)
