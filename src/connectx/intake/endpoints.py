"""``/webhooks/whatsapp``: Meta's verification handshake and signed event delivery.

POST answers 200 only once the raw body is committed (group commit, see batcher.py); a bad or
missing signature is 401 with nothing stored; a body over 3 MB is 413, refused before it is read
further. Card numbers in message text are masked before the body is stored (masking.py).
Malformed JSON with a valid signature is stored (and flagged when processed): answering
anything but 200 would make Meta retry it for a week. The POST itself lives in receiver.py (a
bare ASGI route ahead of the page middleware).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.channels import service as channels
from connectx.db.session import db_session
from connectx.intake.receiver import SIGNATURE_HEADER, accept
from connectx.kit.errors import Forbidden

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.get(
    "/whatsapp",
    response_class=PlainTextResponse,
    summary="Meta's webhook verification handshake",
)
async def verify(
    mode: str | None = Query(None, alias="hub.mode"),
    token: str | None = Query(None, alias="hub.verify_token"),
    challenge: str | None = Query(None, alias="hub.challenge"),
    db: AsyncSession = Depends(db_session, scope="function"),
) -> PlainTextResponse:
    """Echo ``hub.challenge`` when ``hub.mode`` is ``subscribe`` and the verify token is one of
    a connected app's; otherwise 403."""
    if mode != "subscribe" or not token or challenge is None:
        raise Forbidden("Expected hub.mode=subscribe with hub.verify_token and hub.challenge.")
    if await channels.app_for_verify_token(db, token) is None:
        raise Forbidden(
            "The verify token matches no connected Meta app. Connect a number with this app's "
            "verify token first, then verify the webhook."
        )
    return PlainTextResponse(challenge)


@router.post("/whatsapp", summary="Signed WhatsApp webhook events")
async def receive(request: Request) -> Response:
    """Verify ``X-Hub-Signature-256`` over the raw body, store the event durably, answer 200.

    Served by :class:`connectx.intake.receiver.WebhookFastPath` ahead of the page middleware;
    this route (same code, :func:`connectx.intake.receiver.accept`) documents it and serves an
    app mounted without the fast path."""
    return await accept(
        request.stream(),
        request.headers.get("content-length"),
        request.headers.get(SIGNATURE_HEADER),
    )
