"""``/unsubscribe/<token>``: the page a marketing e-mail links to, and its one-click POST
(RFC 8058). No sign-in and no CSRF token: the signed token is the authority, and all it can do is
stop e-mail."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import truncated_ip
from connectx.db.session import db_session
from connectx.kit.errors import DomainError
from connectx.privacy import unsubscribe
from connectx.web.render import render

router = APIRouter()
DB = Depends(db_session, scope="function")


def _page(request: Request, status: int = 200, **ctx: object) -> Response:
    return render(request, "privacy/unsubscribe.html", ctx, status_code=status)


@router.get("/unsubscribe/{token}")
async def confirm_page(request: Request, token: str) -> Response:
    try:
        target = await unsubscribe.read(token)
    except DomainError as exc:
        return _page(request, exc.status, error=exc.detail)
    return _page(request, token=token, what=target.what, done=False)


@router.post("/unsubscribe/{token}")
async def unsubscribe_now(request: Request, token: str, db: AsyncSession = DB) -> Response:
    try:
        target = await unsubscribe.withdraw(db, token, truncated_ip(request))
    except DomainError as exc:
        return _page(request, exc.status, error=exc.detail)
    return _page(request, what=target.what, done=True)
