"""Meta's Graph API over ONE shared aiohttp session per event loop (a connection pool).

Base URL and API version come from configuration (``CONNECTX_GRAPH_BASE_URL``,
``CONNECTX_GRAPH_API_VERSION``); locally ``connectx simulator`` stands in for Meta. Errors come
back as :class:`GraphError` with Meta's code and title; tokens never reach logs or errors.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from connectx.config import get_settings

_sessions: dict[int, aiohttp.ClientSession] = {}

# Failures before a request could leave this process (no connection was made): sending it again
# cannot send it twice. Every other failure without an answer leaves the request in doubt.
NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


@dataclass
class GraphError(Exception):
    code: int | None
    title: str
    http_status: int
    # No answer to a request that may have reached Meta and been accepted (a timeout, a
    # connection lost after it was sent): sending it again may send it twice.
    in_doubt: bool = False

    def __str__(self) -> str:  # no token, no request body: code and title only
        return f"Graph error {self.code} ({self.http_status}): {self.title}"


def session() -> aiohttp.ClientSession:
    """This event loop's shared session (created on first use)."""
    loop = asyncio.get_running_loop()
    found = _sessions.get(id(loop))
    if found is None or found.closed:
        found = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=30, connect=5),
        )
        _sessions[id(loop)] = found
    return found


async def close() -> None:
    """Close this loop's session (at shutdown of the thread that used it)."""
    found = _sessions.pop(id(asyncio.get_running_loop()), None)
    if found is not None:
        await found.close()


def url(path: str) -> str:
    s = get_settings()
    return f"{s.graph_base_url.rstrip('/')}/{s.graph_api_version}/{path.lstrip('/')}"


def _error(status: int, body: Any) -> GraphError:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = err.get("code")
        title = str(err.get("error_user_title") or err.get("message") or "error")[:200]
        return GraphError(code if isinstance(code, int) else None, title, status)
    return GraphError(131000 if status >= 500 else None, f"HTTP {status}", status)


async def call(
    method: str,
    path: str,
    token: str,
    *,
    json: Any = None,
    data: Any = None,
    params: Any = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        async with session().request(
            method, url(path), json=json, data=data, params=params, headers=headers
        ) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            if response.status >= 400:
                raise _error(response.status, body)
            return dict(body or {})
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Connection trouble is treated like Meta's "service unavailable" (retried).
        raise GraphError(131016, type(exc).__name__, 0) from exc


async def send_message(
    phone_number_id: str, token: str, body: dict[str, Any] | bytes
) -> dict[str, Any]:
    """Send one message; ``body`` is the request as a dict, or already as JSON bytes (the
    outbox stores it serialised: sent as is, without parsing and serialising it again)."""
    if isinstance(body, bytes):
        path = f"{phone_number_id}/messages"
        return await call("POST", path, token, data=body, content_type="application/json")
    return await call("POST", f"{phone_number_id}/messages", token, json=body)


class Messages:
    """One number's ``/messages`` endpoint with the URL and headers built once: the sender posts
    the outbox's stored JSON bytes to it (no URL parsing or header building per message)."""

    def __init__(self, phone_number_id: str, token: str) -> None:
        self.phone_number_id = phone_number_id
        self.token = token
        self.url = URL(url(f"{phone_number_id}/messages"))
        self.headers = CIMultiDict(
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        )

    async def send(self, body: bytes) -> dict[str, Any]:
        """Send one message (its Graph request as JSON bytes); errors as in :func:`call`."""
        try:
            async with session().post(self.url, data=body, headers=self.headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            doubt = not isinstance(exc, NOT_SENT)
            raise GraphError(131016, type(exc).__name__, 0, in_doubt=doubt) from exc
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if status >= 400:
            raise _error(status, answer)
        return answer if isinstance(answer, dict) else {}


async def upload_media(
    phone_number_id: str, token: str, data: bytes, mime_type: str, filename: str
) -> str:
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", mime_type)
    form.add_field("file", data, filename=filename, content_type=mime_type)
    out = await call("POST", f"{phone_number_id}/media", token, data=form)
    return str(out["id"])


async def list_templates(waba_id: str, token: str) -> list[dict[str, Any]]:
    """Every template of a WABA, following Meta's cursor pagination."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] | None = {"limit": 100}
    after: str | None = None
    for _ in range(1000):
        query = dict(params or {})
        if after:
            query["after"] = after
        page = await call("GET", f"{waba_id}/message_templates", token, params=query)
        items.extend(page.get("data", []))
        cursors = (page.get("paging") or {}).get("cursors") or {}
        after = cursors.get("after")
        if not (page.get("paging") or {}).get("next") or not after:
            break
    return items


async def create_template(waba_id: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    return await call("POST", f"{waba_id}/message_templates", token, json=body)
