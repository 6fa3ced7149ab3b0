"""Whole numbers typed by people or sent by programs."""

from __future__ import annotations


def is_digits(text: str) -> bool:
    """ASCII digits only: what ``int()`` reads. ``str.isdigit`` also accepts "²" and other
    digit-like characters that ``int()`` refuses (a ValueError, a 500, after the check)."""
    return text.isascii() and text.isdigit()
