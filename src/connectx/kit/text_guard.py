"""Text no database can store is bad input at the door: a NUL character (PostgreSQL's text type
refuses it; SQLite would keep it and pages would show it) or an unpaired surrogate (JSON's
``"\\ud800"``: no UTF-8 exists for it) in a query parameter, a form field or a JSON body is a 422
naming the field, before any route reads it (it was a 500 from the database driver). So are
bytes that are no UTF-8 in a query string or a URL-encoded form (``%FF``, a Latin-1 form), which
parsers silently replace with U+FFFD.

Cheap on the common path: the query string and a form body are parsed only when they hold
``%00`` or anything beyond ASCII, a JSON body only when it holds a ``\\u0000`` or ``\\udXXX``
escape, a multipart form only when a NUL byte stands outside its file parts (its fields are then
read with Starlette's own parser, as the route will read them; files are never parsed twice).
A body sent without a ``Content-Length`` (chunked) is inspected the same way.

A JSON or URL-encoded body over :data:`MAX_INSPECTED` is a 413: no route takes one that large,
and reading it whole would cost the worker its memory (it was read, parsed and then refused by
the route's length checks, unauthenticated on the sign-in routes). Multipart bodies over it
(file uploads, whose routes bound the file themselves) pass uninspected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from connectx.kit.middleware import HttpMiddleware

MAX_INSPECTED = 8 * 1024 * 1024
_JSON_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")
_HIGH_BYTE = re.compile(rb"%[89a-fA-F][0-9a-fA-F]")  # a percent-escaped byte outside ASCII


_FILE_PART = re.compile(rb";\s*filename\*?=", re.IGNORECASE)  # a part's header naming a file


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
    if raw.isascii() and _HIGH_BYTE.search(raw) is None:  # (ASCII text: nothing to decode)
        if b"%00" not in raw:
            return None
    elif hit := _not_utf8(raw):
        return hit
    return _in_fields(parse_qsl(raw.decode("latin-1"), keep_blank_values=True), "a parameter")


def _not_utf8(raw: bytes) -> tuple[str, str] | None:
    """The first name or value of ``name=value&…`` whose bytes are no UTF-8 (``%FF``, or a
    Latin-1 form): parsers replace them with U+FFFD, and the person's text would be stored so,
    without a word."""
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(name.replace(b"+", b" "))
        value_bytes = unquote_to_bytes(value.replace(b"+", b" "))
        label = name_bytes.decode("utf-8", "replace")
        for part, where in ((name_bytes, "a parameter's name"), (value_bytes, label)):
            try:
                part.decode("utf-8")
            except UnicodeDecodeError:
                return (where, "is not valid UTF-8 text")
    return None


def _in_fields(fields: Iterable[tuple[str, Any]], what: str) -> tuple[str, str] | None:
    """The first field whose name or (text) value the database cannot store."""
    for key, value in fields:
        if found := problem(key):
            return (f"{what}'s name", found)
        if isinstance(value, str) and (found := problem(value)):
            return (key, found)
    return None


def _kind(content_type: str) -> str | None:
    """Which body the guard reads: ``form``, ``json``, ``multipart``, or None (any other)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return "form"
    if content_type.startswith("multipart/form-data"):
        return "multipart"
    if "json" in content_type:
        return "json"
    return None


def _nul_outside_files(headers: Headers, body: bytes) -> bool:
    """Whether a NUL byte may stand in a multipart body's text fields. A file's bytes may hold
    any (an image nearly always has NULs), and parsing a whole upload again here cost ~80 ms of
    the event loop per 7 MB: the parts are split on the boundary (C speed) and only those
    without a ``filename`` are looked at. A body that does not split cleanly counts as yes."""
    _, options = parse_options_header(headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        return True
    parts = body.split(b"--" + boundary)
    if len(parts) < 3:
        return True
    for part in parts[1:-1]:
        head, found, data = part.partition(b"\r\n\r\n")
        if not found:
            return True
        if b"\x00" in data and not _FILE_PART.search(head):
            return True
    return False


async def _in_multipart(scope: Scope, body: bytes) -> tuple[str, str] | None:
    headers = Headers(scope=scope)
    if b"\x00" not in body or not _nul_outside_files(headers, body):
        return None

    async def stream() -> Any:
        yield body

    parser = MultiPartParser(headers, stream(), max_part_size=MAX_INSPECTED)
    try:
        form = await parser.parse()
    except MultiPartException:
        return None  # the route answers for a form it cannot read
    try:
        return _in_fields(form.multi_items(), "a field")
    finally:
        await form.close()


async def _in_body(scope: Scope, kind: str, body: bytes) -> tuple[str, str] | None:
    if kind == "form":
        return _in_pairs(body)
    if kind == "multipart":
        return await _in_multipart(scope, body)
    if _JSON_ESCAPES.search(body):
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
        kind = _kind(content_type)
        length = headers.get(b"content-length", b"")
        declared = int(length) if length.isdigit() else None  # None: chunked
        too_large = False
        if hit is None and kind is not None:
            if declared is None or declared <= MAX_INSPECTED:
                body, receive, whole = await _buffered(receive, MAX_INSPECTED)
                if whole:
                    hit = await _in_body(scope, kind, body)
                else:
                    too_large = kind != "multipart"
            else:
                too_large = kind != "multipart"
        if too_large:
            await _refuse_too_large(scope, receive, send)
            return
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


async def _refuse_too_large(scope: Scope, receive: Receive, send: Send) -> None:
    from connectx.kit.problems import respond

    response = respond(
        Request(scope),
        413,
        "Too large",
        f"The request body is over {MAX_INSPECTED // 2**20} MB, more than any form or API "
        "call takes; send less.",
        "too_large",
    )
    await response(scope, receive, send)


async def _buffered(receive: Receive, limit: int) -> tuple[bytes, Receive, bool]:
    """The body (whole, or its first ``limit``-odd bytes), a ``receive`` that gives the same
    messages again, then the rest, and whether the body was whole."""
    messages: list[Message] = []
    size = 0
    whole = False
    while size <= limit:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            whole = True  # the client left: the app sees it, no 413 to nobody
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            whole = size <= limit
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay, whole
