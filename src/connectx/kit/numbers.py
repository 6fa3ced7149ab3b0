"""Whole numbers typed by people or sent by programs."""

from __future__ import annotations


def is_digits(text: str) -> bool:
    """ASCII digits only: what ``int()`` reads. ``str.isdigit`` also accepts "²" and other
    digit-like characters that ``int()`` refuses (a ValueError, a 500, after the check)."""
    return text.isascii() and text.isdigit()


INT64_MAX = 2**63 - 1


def number_out_of_range(exc: BaseException) -> bool:
    """An integer given (an id in a path such as ``/api/v1/contacts/99999999999999999999``, or
    on the command line) too big for a database integer column: SQLite's driver raises
    ``OverflowError``, asyncpg a data error "value out of int64 range" when binding it. Bad
    input, not a fault."""
    if isinstance(exc, OverflowError):
        return "too large to convert to SQLite INTEGER" in str(exc)
    orig = getattr(exc, "orig", None)
    return orig is not None and "out of int64 range" in str(orig)
