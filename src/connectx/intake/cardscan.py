"""The card-number pre-scan in C: one pass over a webhook body says when there is certainly
nothing to mask, so masking's own checks (:mod:`.masking`) run only for the rest.

Why C: intake's event loop is the web process's scarce resource, and masking's checks cost it
~15-20 µs of a 50-update body (12 kB) under load, the largest part of a POST after uvicorn's
and the signature's (docs/whatsapp-inbound.md, session 19). They are four scans of the bytes
through the standard library (``isascii``, a regular expression for ``\\u``, ``translate`` to a
shape and ``find`` over it for stretches of 13 or more digits) plus Python for every stretch
found, already at what the standard library can do (sessions 15-18). ``cardscan.c`` does the
same in one pass, 64 bytes a step with SSE2: ~2 µs for such a body.

It answers "nothing to mask" only where :func:`.masking.mask_in_python`'s first two checks
would: no decimal digit of another script, raw or as a JSON escape (Meta escapes every
character beyond ASCII: emoji, accents and Arabic letters are escapes to read, not reasons to
parse), and every stretch of digits, spaces and hyphens holding 13 digits an identifier field's
compact value or digits glued to a word character, ``+`` or ``.``; everything else takes the
Python path as before. tests/whatsapp/test_cardscan.py holds the two to that on a corpus and on
random bodies. A 50-update body: ~4 µs through the pre-scan against ~20-50 µs through the
Python checks when ASCII, ~6-9 µs against ~280-350 when it carries escaped emoji or Arabic.

``make install`` builds it (``scripts/build-native.sh``: the C compiler and Python's headers,
no package) next to this file as ``_cardscan<ext suffix>``; it is git-ignored. Where it was not
built, :func:`bind` gives None and masking runs as before, only slower (``connectx serve`` says
so when it starts).
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Callable
from types import ModuleType

Scan = Callable[[bytes], bool]


def _module() -> ModuleType | None:
    try:
        return importlib.import_module("connectx.intake._cardscan")
    except ImportError:
        return None


def _ranges(code_points: list[int]) -> list[tuple[int, int]]:
    """Sorted code points as inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return ranges


def bind(
    identifiers: frozenset[str], other_digits: list[int], *, bytewise: bool = False
) -> Scan | None:
    """``scan(body) -> True`` when ``body`` may hold something to mask, or None (not built):
    ``identifiers`` the fields whose values are ids, ``other_digits`` the decimal digits
    beyond ASCII (sorted code points). ``bytewise``: the scan reading a byte a step, as on a
    machine without SSE2 (tests)."""
    module = _module()
    if module is None:
        return None
    module.set_identifiers(b"".join(name.encode() + b"\0" for name in sorted(identifiers)))
    module.set_digits(b"".join(struct.pack("=II", *r) for r in _ranges(other_digits)))
    scan: Scan = module.scan_bytewise if bytewise else module.scan
    return scan


def built() -> bool:
    return _module() is not None
