"""Signed-in page gate and in-app notices (pure ASGI middleware).

For a browser's page request (GET, HTML preferred, not htmx, not an API or asset path):

* a signed-in person with a material policy change to accept is redirected (303) to
  ``/policies/accept?next=<the page>``: nothing else opens until they accept (or sign out);
* the page gets what the layout's notice region shows (``request.state``): a material change
  published in the last ``CONNECTX_POLICY_BANNER_DAYS`` days (everyone), open security notices
  (workspace owners), a suspended workspace (its members).

The session and the notices are looked up here with one query in a read-only transaction; the
pages themselves authenticate as usual.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from connectx.accounts.principal import SEEN_SESSION, SESSION_COOKIE, SeenSession
from connectx.config import get_settings
from connectx.db.session import read_only
from connectx.kit import clock
from connectx.kit.crypto import token_hash
from connectx.kit.middleware import HttpMiddleware
from connectx.kit.problems import prefers_html
from connectx.policies import repository as repo
from connectx.policies import service

log = logging.getLogger(__name__)

# Not pages at all: no notices, no gate.
NOT_PAGES = ("/api/", "/static/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/_sim")
# Pages that stay open while an acceptance is due (they show the notices).
OPEN_PREFIXES = (
    "/policies/",
    "/privacy",
    "/terms",
    "/cookies",
    "/signin",
    "/signout",
    "/signup",
    "/verify",
    "/forgot",
    "/reset",
    "/docs",
    "/webhooks",
)


def _page(scope: Scope) -> bool:
    """A browser's page request (the notices apply)."""
    if scope.get("method") != "GET":
        return False
    if str(scope.get("path", "")).startswith(NOT_PAGES):
        return False
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if headers.get("hx-request"):
        return False
    return prefers_html(headers.get("accept"))


def _gated(scope: Scope) -> bool:
    """A page that waits for a due acceptance."""
    return not str(scope.get("path", "")).startswith(OPEN_PREFIXES)


def _session_token(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header: no session to look at
                return None
            morsel = jar.get(SESSION_COOKIE)
            if morsel is not None and morsel.value:
                return morsel.value
    return None


async def _look(scope: Scope, token: str | None) -> tuple[str | None, dict[str, Any]]:
    """(redirect target or None, notices for the page). Reads only, in a read-only transaction
    (on SQLite it takes no write lock: a page view does not queue behind writers here)."""
    notices: dict[str, Any] = {}
    change = await service.recent_material_change()
    if change is not None:
        kind = service.KINDS[change.kind]
        notices["policy_change"] = {
            "label": kind.label,
            "path": kind.path,
            "date": change.document.last_updated_text,
            "summary": change.summary or "",
        }
    if token is None:
        return None, notices
    settings = get_settings()
    hashed = token_hash(token)
    async with read_only(plain_reads=True) as db:
        found = await repo.session_with_notices(db, hashed)
        now = clock.now()
        if found is None:
            return None, notices
        session, open_notices, suspended, role = found
        if (
            session.revoked_at is not None
            or session.mfa_pending
            or now >= session.expires_at
            or now - session.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
        ):
            return None, notices
        notices[SEEN_SESSION] = SeenSession(
            hashed,
            session.id,
            session.user_id,
            session.workspace_id,
            role,
            session.revoked_at,
            session.mfa_pending,
            session.expires_at,
            session.last_seen_at,
            session.csrf_token,
        )
        if _gated(scope) and await service.due_for(db, session.user_id):
            path = str(scope.get("path", "/"))
            query = scope.get("query_string", b"").decode("latin-1")
            wanted = path + (f"?{query}" if query else "")
            return f"/policies/accept?next={quote(wanted, safe='')}", notices
        if open_notices:
            notices["security_notices"] = open_notices
        if suspended:
            notices["workspace_suspended"] = True
    return None, notices


class PolicyGate(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _page(scope):
            await self.app(scope, receive, send)
            return
        try:
            target, notices = await _look(scope, _session_token(scope))
        except Exception as exc:  # the page still opens; its own checks still apply
            log.warning("policy gate skipped: %s", type(exc).__name__)
            target, notices = None, {}
        if target is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", target.encode("latin-1")), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        scope.setdefault("state", {}).update(notices)
        await self.app(scope, receive, send)
