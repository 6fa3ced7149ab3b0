"""Enforce the cookie choice on every response (pure ASGI).

* Works out what applies to the request (the ``cx_consent`` choice, overridden by ``Sec-GPC: 1``)
  and leaves it on ``request.state.cookie_choice`` for pages and the banner.
* Reads ``cx_prefs`` only when preferences are allowed (``request.state.ui_theme``).
* With analytics allowed, gives the browser a ``cx_aid`` id on its first page and counts page
  views (new or returning visitor); without it, the id is never read.
* Deletes optional cookies the browser still holds once they are no longer allowed (withdrawn
  choice, or GPC).
* Sets the anonymous ``cx_csrf`` cookie when a page minted a token for a form (the banner's) and
  nothing else set it.
"""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from typing import Any

from prometheus_client import Counter
from starlette.types import Message, Receive, Scope, Send

from connectx.config import get_settings
from connectx.cookies import service
from connectx.kit import csrf
from connectx.kit.middleware import HttpMiddleware

PAGE_VIEWS = Counter(
    "connectx_web_page_views_total",
    "Page views of visitors who allowed analytics cookies.",
    ["visitor"],
)


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for key, value in scope["headers"]:
        if key.lower() == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed header: treat as no cookies
                return {}
    return {k: m.value for k, m in jar.items()}


def set_cookie_header(
    name: str, value: str, *, max_age: int | None, http_only: bool = True
) -> bytes:
    """A Set-Cookie value (path /, SameSite=Lax, HttpOnly, Secure on https); ``max_age=None``:
    a session cookie; ``0``: delete."""
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = "/"
    if max_age is not None:
        morsel["max-age"] = str(max_age)
    morsel["samesite"] = "Lax"
    if http_only:
        morsel["httponly"] = True
    if get_settings().secure_cookies:
        morsel["secure"] = True
    return morsel.OutputString().encode("latin-1")


class CookieChoices(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = _cookies(scope)
        choice = service.effective(cookies, service.gpc_requested(headers))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["cookie_choice"] = choice
        if choice.preferences:
            theme = cookies.get(service.PREFS_COOKIE, "")
            if theme in service.THEMES:
                state["ui_theme"] = theme
        analytics_id = cookies.get(service.ANALYTICS_COOKIE) if choice.analytics else None

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                out: list[Any] = message.setdefault("headers", [])
                already = b"".join(v for k, v in out if k.lower() == b"set-cookie")
                page = _is_page(scope, message)
                if state.get("cookie_choice_set") is not None:
                    # The response records a new choice: apply that one from here on.
                    now = state["cookie_choice_set"]
                    allowed_prefs, allowed_analytics = now.preferences, now.analytics
                else:
                    allowed_prefs, allowed_analytics = choice.preferences, choice.analytics
                if allowed_analytics and page and not analytics_id:
                    if b"cx_aid=" not in already:
                        out.append(
                            (
                                b"set-cookie",
                                set_cookie_header(
                                    service.ANALYTICS_COOKIE,
                                    secrets.token_urlsafe(16),
                                    max_age=service.ANALYTICS_DAYS * 86400,
                                ),
                            )
                        )
                    PAGE_VIEWS.labels("new").inc()
                elif allowed_analytics and page:
                    PAGE_VIEWS.labels("returning").inc()
                for name, allowed in (
                    (service.ANALYTICS_COOKIE, allowed_analytics),
                    (service.PREFS_COOKIE, allowed_prefs),
                ):
                    if not allowed and name in cookies and f"{name}=".encode() not in already:
                        out.append((b"set-cookie", set_cookie_header(name, "", max_age=0)))
                minted = state.get("cx_csrf_new")
                if minted and b"cx_csrf=" not in already:
                    out.append(
                        (
                            b"set-cookie",
                            set_cookie_header(csrf.COOKIE, str(minted), max_age=None),
                        )
                    )
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _is_page(scope: Scope, message: Message) -> bool:
    if scope.get("method") != "GET" or message.get("status") != 200:
        return False
    for key, value in message.get("headers", []):
        if key.lower() == b"content-type":
            return value.lower().startswith(b"text/html")
    return False
