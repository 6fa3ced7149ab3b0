"""Pure-ASGI middleware: request ids, security headers, request metrics."""

from __future__ import annotations

import secrets
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectx.kit.logging import request_id

REQUESTS = Counter("connectx_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("connectx_http_request_seconds", "HTTP request latency", ["method", "route"])

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class HttpMiddleware:
    """A pure-ASGI middleware of HTTP requests: anything else (lifespan, websockets) passes
    through untouched; a subclass handles requests in :meth:`http`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestContext(HttpMiddleware):
    """Gives every request an id (``X-Request-ID``), times it and adds security headers."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        super().__init__(app)
        self.https = https

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid  # for the 500 handler (outside us)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = message.setdefault("headers", [])
                present = {bytes(k).lower() for k, _ in headers}
                extra = [
                    (b"x-request-id", rid.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"strict-origin-when-cross-origin"),
                    (b"x-frame-options", b"DENY"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                ]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", CSP.encode()))
                if self.https:
                    extra.append(
                        (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
                    )
                headers.extend(h for h in extra if h[0] not in present)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], label, str(status)).inc()
            LATENCY.labels(scope["method"], label).observe(time.perf_counter() - started)
            request_id.reset(token)
