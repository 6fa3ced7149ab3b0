"""The links the rights executors hand out. ``/privacy/exports/download``: where a subject's
download link leads; the page (GET) changes nothing, so mail scanners that open links do not use
them up, and the button (POST) uses the link once and streams the archive.
``/privacy/notices/ack``: where a recipient acknowledges a notice (POST; e-mailed links show a
page with a button first). Neither acts on a session: the token in the link is the credential."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.throttle import client_ip
from connectx.db.session import db_session
from connectx.kit import csrf
from connectx.kit.errors import Gone
from connectx.media.endpoints import content_disposition
from connectx.privacy import purpose
from connectx.privacy.rights import exports, notices

for _right in ("access", "portability"):
    purpose.register(
        f"rights.{_right}", purpose.Use.RIGHTS, ["*.*"], "connectx.privacy.rights.downloads"
    )

entry = APIRouter(dependencies=[Depends(csrf.csrf_protect_entry)])
acks = APIRouter()  # called by recipients' programs: no cookie, no CSRF token to send
DB = Depends(db_session, scope="function")
PATH = "/privacy/exports/download"


def _private(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@entry.get(PATH, response_class=HTMLResponse)
async def download_page(request: Request, token: str = "", db: AsyncSession = DB) -> Response:
    export = await exports.peek(db, token)
    return _private(
        csrf.page(
            request,
            "privacy/download.html",
            status_code=200 if export else 410,
            export=export,
            token=token if export else "",
        )
    )


@entry.post(PATH, response_model=None)
async def download(request: Request, token: str = Form(""), db: AsyncSession = DB) -> Response:
    try:
        got = await exports.download(db, token, ip=client_ip(request))
    except Gone as exc:  # the refusal is audited: this transaction still commits
        return _private(
            csrf.page(request, "privacy/download.html", status_code=410, export=None, error=exc)
        )
    headers = {
        "Content-Disposition": content_disposition(got.filename, inline=False),
        "Content-Length": str(got.size),
        "X-Content-Type-Options": "nosniff",
    }
    return _private(StreamingResponse(got.chunks, media_type="application/zip", headers=headers))


@acks.get(notices.ACK_PATH, response_class=HTMLResponse)
async def ack_page(request: Request, token: str = "") -> Response:
    return _private(csrf.page(request, "privacy/ack.html", token=token, done=False))


@acks.post(notices.ACK_PATH, response_model=None)
async def ack(request: Request, token: str = "", db: AsyncSession = DB) -> Response:
    try:
        notice = await notices.acknowledge(db, token, ip=client_ip(request))
    except Gone as exc:
        if "json" not in request.headers.get("accept", ""):
            return _private(
                csrf.page(request, "privacy/ack.html", status_code=410, error=exc, done=False)
            )
        raise
    if "json" in request.headers.get("accept", ""):
        return JSONResponse({"notice_id": notice.id, "status": notice.status})
    return _private(csrf.page(request, "privacy/ack.html", token="", done=True))


router = APIRouter()
router.include_router(entry)
router.include_router(acks)
