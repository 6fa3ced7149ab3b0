"""Opaque keyset cursors (``next_cursor``): base64url of the sort key of the last row sent."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from sqlalchemy import literal, tuple_

from connectx.kit.errors import InvalidInput

MAX_LIMIT = 200


def encode(*parts: str | int | datetime) -> str:
    raw = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, count: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    parts = raw.split("|")
    if len(parts) != count or not all(parts):
        raise InvalidInput(
            "The cursor is not valid: pass the next_cursor value of the previous page unchanged.",
            field="cursor",
        )
    return parts


def decode_time_id(cursor: str) -> tuple[datetime, int]:
    when, ident = decode(cursor, 2)
    try:
        return datetime.fromisoformat(when), int(ident)
    except ValueError:
        raise InvalidInput(
            "The cursor is not valid: pass the next_cursor value of the previous page unchanged.",
            field="cursor",
        ) from None


def decode_id(cursor: str) -> int:
    (ident,) = decode(cursor, 1)
    try:
        return int(ident)
    except ValueError:
        raise InvalidInput(
            "The cursor is not valid: pass the next_cursor value of the previous page unchanged.",
            field="cursor",
        ) from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.", field="limit")
    return limit


def before(time_column: Any, id_column: Any, after: tuple[datetime, int]) -> Any:
    """The rows after ``after`` in a newest-first (time, id) order, as one row-value comparison
    ``(time, id) < (at, id)``: both databases use it as the range of a ``(…, time, id)`` index,
    so a deep page starts where the previous one ended (the ``OR`` form was a filter, read
    from the top of the index on every page)."""
    at, ident = after
    return tuple_(time_column, id_column) < tuple_(
        literal(at, time_column.type), literal(ident, id_column.type)
    )
