"""``POST /webhooks/whatsapp`` as a bare ASGI route, ahead of the page middleware.

Meta's deliveries need none of what the page middleware does (sessions, the policy gate, cookie
choices, security signals, the access log, FastAPI's routing over every router): walking it cost
about a fifth of the web process's time under load (bench/results/intake-2026-11-27.md). So the
application object (``connectx.app.ConnectX``) hands ``POST /webhooks/whatsapp`` to
:func:`serve` before anything else runs, and every other request to FastAPI unchanged. The
FastAPI route of the same path (kept for the OpenAPI document) calls the same :func:`accept`, and
under ``connectx serve`` most deliveries never become an ASGI request at all
(:mod:`connectx.intake.fast_http` answers them from the protocol with this module's functions),
so the behaviour is one piece of code:

* 413 for a declared or streamed body over 3 MB (refused before it is read further);
* 401 (problem+json) with nothing stored for a missing or wrong ``X-Hub-Signature-256``;
* 503 + ``Retry-After`` when the app secrets cannot be read or the events cannot be committed
  (Meta retries);
* 200 only once the raw body is committed (group commit, :mod:`connectx.intake.batcher`).

Answers carry ``X-Content-Type-Options`` (errors also an ``X-Request-ID``); they are counted in
``connectx_intake_requests_total`` and ``connectx_intake_request_seconds``, not in the generic
HTTP metrics or the access log (a webhook carries no browser to describe). An unexpected error
is a logged 500 problem+json naming nothing of the body.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from connectx.channels import app_secrets
from connectx.intake.batcher import StoreFailed, batcher
from connectx.intake.masking import mask_body
from connectx.kit.errors import Unauthenticated
from connectx.kit.loop_metrics import LoopCounter, LoopHistogram
from connectx.kit.problems import problem_response

log = logging.getLogger(__name__)

PATH = "/webhooks/whatsapp"
MAX_BODY = 3 * 1024 * 1024
SIGNATURE_HEADER = "x-hub-signature-256"

# Counted by the event loop's thread only: without the library's locks (kit/loop_metrics.py).
RECEIVED = LoopCounter(
    "connectx_intake_requests_total",
    "Webhook POSTs by outcome.",
    "outcome",
    ("stored", "bad_signature", "too_large", "store_failed", "secrets_unavailable", "error"),
)
OK = Response(status_code=200)  # stateless: the same answer object for every stored event
SECONDS = LoopHistogram(
    "connectx_intake_request_seconds",
    "Webhook POSTs: from the request to the answer (the 200 waits for the commit).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def declared_too_large(content_length: str | bytes | None) -> bool:
    """Whether a ``Content-Length`` header declares a body over :data:`MAX_BODY` (refused
    before it is read)."""
    return (
        content_length is not None and content_length.isdigit() and int(content_length) > MAX_BODY
    )


def too_large() -> Response:
    RECEIVED.inc("too_large")
    return problem_response(
        413,
        "Payload too large",
        "Webhook bodies are limited to 3 MB (Meta's maximum).",
        "payload_too_large",
    )


async def _read(chunks: AsyncIterator[bytes]) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def accept(
    chunks: AsyncIterator[bytes], content_length: str | None, signature: str | None
) -> Response:
    """Verify, store and answer one delivery (the whole behaviour of the POST)."""
    if declared_too_large(content_length):
        return too_large()
    try:
        body = await _read(chunks)
    except _TooLarge:
        return too_large()
    return await verify_and_store(body, signature)


async def verify_and_store(body: bytes, signature: str | None) -> Response:
    try:
        app_id = await app_secrets.cache.verify(body, signature)
    except app_secrets.SecretsUnavailable:
        RECEIVED.inc("secrets_unavailable")
        return problem_response(
            503,
            "Busy",
            "The signature could not be checked just now; send it again (Meta retries "
            "automatically).",
            "secrets_unavailable",
            headers={"Retry-After": "1"},
        )
    if app_id is None:
        return unsigned()
    try:
        await batcher().submit(app_id, mask_body(body))
    except StoreFailed:
        return not_stored()
    RECEIVED.inc("stored")
    return OK


def unsigned() -> Response:
    """The 401 for a missing or wrong signature (nothing was stored)."""
    RECEIVED.inc("bad_signature")
    return problem_response(
        Unauthenticated.status,
        Unauthenticated.title,
        "The X-Hub-Signature-256 header is missing or does not match the body signed with "
        "a connected Meta app's secret.",
        Unauthenticated.code,
    )


def not_stored() -> Response:
    """The 503 for a delivery the group commit could not store (Meta retries it)."""
    RECEIVED.inc("store_failed")
    return problem_response(
        503,
        "Not stored",
        "The event could not be stored; send it again (Meta retries automatically).",
        "store_failed",
        headers={"Retry-After": "1"},
    )


def failed(exc: BaseException) -> Response:
    """The 500 for an unexpected error: logged by type only, nothing of the body (house rule 8)."""
    log.error("unhandled %s on POST %s", type(exc).__name__, PATH, exc_info=exc)
    RECEIVED.inc("error")
    return problem_response(
        500,
        "Something went wrong",
        "The event was not stored; send it again (Meta retries automatically).",
        "internal_error",
    )


def error_headers() -> list[tuple[bytes, bytes]]:
    """What every answer but the 200 carries besides its own headers."""
    return [
        (b"x-request-id", secrets.token_hex(8).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]


async def _receive_body(receive: Receive, content_length: str | None) -> Response | bytes:
    """The body straight from the ASGI messages (most arrive whole, in one), or the 413."""
    if declared_too_large(content_length):
        return too_large()
    message = await receive()
    if message["type"] != "http.request":  # http.disconnect: the client went away
        raise _Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return too_large() if len(body) > MAX_BODY else body
    parts, size = [body], len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return too_large()
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def is_webhook_post(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"


_OK_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", b"0"), (b"x-content-type-options", b"nosniff")],
}
_EMPTY_BODY: Message = {"type": "http.response.body", "body": b""}


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ``POST /webhooks/whatsapp`` (see the module doc), as a bare ASGI app."""
    started = time.perf_counter()
    length = signature = None
    for name, value in scope["headers"]:  # lower-case names (the ASGI specification)
        if name == b"content-length":
            length = value.decode("latin-1")
        elif name == b"x-hub-signature-256":
            signature = value.decode("latin-1")
    try:
        body = await _receive_body(receive, length)
        response = body if isinstance(body, Response) else await verify_and_store(body, signature)
    except _Disconnected:
        return  # nobody to answer; nothing was stored
    except Exception as exc:  # never a traceback to Meta
        response = failed(exc)
    if response is OK:
        await send(_OK_START)
        await send(_EMPTY_BODY)
    else:
        extra = error_headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await response(scope, receive, send_with_headers)
    SECONDS.observe(time.perf_counter() - started)
