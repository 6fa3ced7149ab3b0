"""Scrub personal data and secrets out of free text (log lines, error messages)."""

from __future__ import annotations

import re
from collections.abc import Callable

_KEYWORDS = (
    r"bearer|token|secret|password|passwd|pwd|passcode|api[_-]?key|authorization|cookie"
    r"|session[_-]?id|totp|otp|recovery[_-]?code"
)

# Every unbounded run is bounded ({1,64}, not +) where a match may start anywhere inside it: a
# pattern such as ``[A-Za-z0-9.]+@`` tried at each of a 20 KB word's positions scanned the rest
# of it each time (1 s per log line carrying one, 25 s at 100 KB). An e-mail address's local part
# has at most 64 characters, its domain 255.
#
# Replacements are literal text or functions, never templates with back-references: re resolves
# those by importing at call time, which fails for a late log line during interpreter shutdown.
_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # Errors that quote the value they rejected: whatever it was (a contact's name, a message's
    # text), it goes, to the end of its line. A validation error's ``input_value=...`` (pydantic)
    # or ``'input': ...`` (FastAPI's request and response validation errors, ``errors()``
    # printed), ``int()`` and ``float()`` of a word. Names and message text have no shape the
    # patterns below could find.
    (
        re.compile(
            r"(\binput_value=|[\"']input[\"']\s*:\s*"
            r"|\binvalid literal for \w{1,16}\(\) with base \d{1,2}: "
            r"|\bcould not convert string to \w{1,16}: )[^\n]*"
        ),
        lambda m: f"{m[1]}[hidden]",
    ),
    (re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,}"), "[email]"),
    (re.compile(r"[A-Za-z0-9._%+-]{1,64}%40[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,}"), "[email]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), lambda m: f"{m[1]} [redacted]"),
    # key=value, key: value, "key": "value", 'key': 'value', also as part of a longer name
    # (new_password, access_token, X-CSRF-Token).
    (
        re.compile(
            rf"(?i)(?<![A-Za-z0-9])((?:[A-Za-z0-9]{{1,32}}[_-]){{0,8}}(?:{_KEYWORDS}))"
            r"([\"']?\s*[=:]\s*|\s+)(\"[^\"]*\"|'[^']*'|[^\s,;&}\])]+)"
        ),
        lambda m: f"{m[1]}{m[2]}[redacted]",
    ),
    (re.compile(r"\bcx_[A-Za-z0-9_-]{8,}"), "[api-key]"),
    (re.compile(r"\bEAA[A-Za-z0-9]{20,}"), "[token]"),  # Meta access tokens
    (re.compile(r"(?i)%2B\d{7,15}\b"), "[phone]"),  # URL-encoded +E.164
    # A phone number may end a sentence ("call +971 50 123 4567."); a decimal point may not.
    # Not a date or a time ("2026-11-27 10:30"), nor the tail of one.
    (
        re.compile(r"(?<!\w)(?<!\d\.)(?!\d{4}-\d\d-\d\d)\+?\d[\d ()-]{6,}\d(?!\w|\.\d|:\d)"),
        "[phone]",
    ),
    (re.compile(r"\b[A-Za-z0-9_-]{32,}\b"), "[secret]"),  # long random tokens
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
