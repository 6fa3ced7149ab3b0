"""``/webhooks/whatsapp``: Meta's verification handshake and signed event delivery.

POST answers 200 only once the raw body is committed (group commit, see batcher.py); a bad or
missing signature is 401 with nothing stored; a body over 3 MB is 413, refused before it is read
further. Card numbers in message text are masked before the body is stored (masking.py).
Malformed JSON with a valid signature is stored (and flagged when processed): answering
anything but 200 would make Meta retry it for a week.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.channels import app_secrets
from connectx.channels import service as channels
from connectx.db.session import db_session
from connectx.intake.batcher import StoreFailed, batcher
from connectx.intake.masking import mask_body
from connectx.kit.errors import Forbidden, Unauthenticated
from connectx.kit.problems import problem_response

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY = 3 * 1024 * 1024
SIGNATURE_HEADER = "x-hub-signature-256"

RECEIVED = Counter("connectx_intake_requests_total", "Webhook POSTs by outcome.", ["outcome"])


def _too_large() -> Response:
    RECEIVED.labels("too_large").inc()
    return problem_response(
        413,
        "Payload too large",
        "Webhook bodies are limited to 3 MB (Meta's maximum).",
        "payload_too_large",
    )


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
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        return _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return _too_large()
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        app_id = await app_secrets.cache.verify(body, request.headers.get(SIGNATURE_HEADER))
    except app_secrets.SecretsUnavailable:
        RECEIVED.labels("secrets_unavailable").inc()
        return problem_response(
            503,
            "Busy",
            "The signature could not be checked just now; send it again (Meta retries "
            "automatically).",
            "secrets_unavailable",
            headers={"Retry-After": "1"},
        )
    if app_id is None:
        RECEIVED.labels("bad_signature").inc()
        raise Unauthenticated(
            "The X-Hub-Signature-256 header is missing or does not match the body signed with "
            "a connected Meta app's secret."
        )
    try:
        await batcher().submit(app_id, mask_body(body))
    except StoreFailed:
        RECEIVED.labels("store_failed").inc()
        return problem_response(
            503,
            "Not stored",
            "The event could not be stored; send it again (Meta retries automatically).",
            "store_failed",
            headers={"Retry-After": "1"},
        )
    RECEIVED.labels("stored").inc()
    return Response(status_code=200)
