"""Request-level security signals (pure ASGI):

* sets the strictly necessary ``cx_device`` cookie when a sign-in minted a device id;
* writes one access-log line per request with coarse usage data only (``connectx.access``): the
  route template (never the raw path, which can carry tokens), method, status, duration, the
  truncated network, browser and system family, device class and country when known.
  ``CONNECTX_ACCESS_LOG=false`` turns it off; logs follow the log sink's retention (``usage_log``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from connectx.accounts.principal import truncated_ip
from connectx.config import get_settings
from connectx.cookies.middleware import set_cookie_header
from connectx.kit.middleware import HttpMiddleware
from connectx.security import devices
from connectx.security.service import STATE_NEW_DEVICE_COOKIE

access = logging.getLogger("connectx.access")


class SecuritySignals(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500
        settings = get_settings()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                minted = state.get(STATE_NEW_DEVICE_COOKIE)
                if minted:
                    headers = message.setdefault("headers", [])
                    max_age = devices.DEVICE_COOKIE_DAYS * 86400
                    cookie = set_cookie_header(devices.DEVICE_COOKIE, str(minted), max_age=max_age)
                    headers.append((b"set-cookie", cookie))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if settings.access_log and access.isEnabledFor(logging.INFO):
                request = Request(scope)
                device = devices.of_request(request)
                route = scope.get("route")
                access.info(
                    "%s %s %s %.1fms",
                    scope.get("method"),
                    getattr(route, "path", "unmatched"),
                    status,
                    (time.perf_counter() - started) * 1000,
                    extra={
                        "network": truncated_ip(request),
                        "browser": device.browser,
                        "os": device.os,
                        "device_class": device.device_class,
                        "country": devices.country(request),
                    },
                )
