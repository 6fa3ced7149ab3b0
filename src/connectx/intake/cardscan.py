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
would (all ASCII, no ``\\u`` escape, every stretch of digits, spaces and hyphens holding 13
digits an identifier field's compact value or digits glued to a word character, ``+`` or ``.``);
everything else takes the Python path as before. tests/whatsapp/test_cardscan.py holds the two
to that on a corpus and on random bodies.

``make install`` builds it (``scripts/build-native.sh``: the C compiler and Python's headers,
no package) next to this file as ``_cardscan<ext suffix>``; it is git-ignored. Where it was not
built, :func:`bind` gives None and masking runs as before, only slower (``connectx serve`` says
so when it starts).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

Scan = Callable[[bytes], bool]


def _module() -> ModuleType | None:
    try:
        return importlib.import_module("connectx.intake._cardscan")
    except ImportError:
        return None


def bind(identifiers: frozenset[str], *, bytewise: bool = False) -> Scan | None:
    """``scan(body) -> True`` when ``body`` may hold something to mask, or None (not built).
    ``bytewise``: the scan reading a byte a step, as on a machine without SSE2 (tests)."""
    module = _module()
    if module is None:
        return None
    module.set_identifiers(b"".join(name.encode() + b"\0" for name in sorted(identifiers)))
    scan: Scan = module.scan_bytewise if bytewise else module.scan
    return scan


def built() -> bool:
    return _module() is not None
