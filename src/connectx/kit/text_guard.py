"""Text no database can store is bad input at the door: a NUL character (PostgreSQL's text type
refuses it; SQLite would keep it and pages would show it) or an unpaired surrogate (JSON's
``"\\ud800"``: no UTF-8 exists for it) in a query parameter, a form field or a JSON body is a 422
naming the field, before any route reads it (it was a 500 from the database driver).

Cheap on the common path: the query string and a form body are parsed only when they hold
``%00``, a JSON body only when it holds a ``\\u0000`` or ``\\udXXX`` escape. Multipart bodies
(uploads) and bodies over :data:`MAX_INSPECTED` pass untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from connectx.kit.middleware import HttpMiddleware

MAX_INSPECTED = 8 * 1024 * 1024
_JSON_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def repaired(payload: Any, body: bytes) -> Any:
    """``payload`` (parsed from the JSON ``body``) with every unpaired surrogate in its strings
    replaced by U+FFFD, as UTF-8 decoders do: JSON may escape one (``"\\ud800"``), UTF-8 cannot
    hold it. For text we accepted and must keep (webhooks), not refuse. The walk runs only when
    ``body`` holds such an escape."""
    if _SURROGATE_ESCAPE.search(body) is None:
        return payload
    return _repair(payload)


def _repair(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_repair(k): _repair(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_repair(v) for v in value]
    return value


def problem(text: str) -> str | None:
    """What is wrong with ``text`` for storage, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode)"
    return None


def _in_json(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        found = problem(value)
        return (path or "body", found) if found else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and problem(key):
            return (where, f"has a name that {problem(key)}")
        hit = _in_json(item, where)
        if hit:
            return hit
    return None


def _in_pairs(raw: bytes) -> tuple[str, str] | None:
    if b"%00" not in raw:
        return None
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if problem(key):
            return ("a parameter's name", str(problem(key)))
        if problem(value):
            return (key, str(problem(value)))
    return None


def _in_body(content_type: str, body: bytes) -> tuple[str, str] | None:
    if content_type.startswith("application/x-www-form-urlencoded"):
        return _in_pairs(body)
    if "json" in content_type and _JSON_ESCAPES.search(body):
        try:
            parsed = json.loads(body)
        except ValueError:
            return None  # the route answers 422 for JSON it cannot read
        return _in_json(parsed, "")
    return None


class TextGuard(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = _in_pairs(scope.get("query_string", b""))
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        inspect = content_type.startswith("application/x-www-form-urlencoded") or (
            "json" in content_type
        )
        length = headers.get(b"content-length", b"")
        if hit is None and inspect and length.isdigit() and int(length) <= MAX_INSPECTED:
            body, receive = await _buffered(receive)
            hit = _in_body(content_type, body)
        if hit is None:
            await self.app(scope, receive, send)
            return
        from connectx.kit.problems import respond

        field, what = hit
        detail = f"{field}: {what}; remove it and send again."
        errors = [{"field": field, "message": what}]
        # ``field`` as domain errors give it, ``errors`` as validation errors do.
        response = respond(
            Request(scope),
            422,
            "Invalid input",
            detail,
            "invalid_input",
            field=field,
            errors=errors,
        )
        await response(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that gives the same messages again, then the rest."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay
