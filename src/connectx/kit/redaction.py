"""Scrub personal data and secrets out of free text (log lines, error messages)."""

from __future__ import annotations

import re

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
    (
        re.compile(
            r"(?i)\b(bearer|token|secret|password|passwd|pwd|api[_-]?key|authorization)"
            r"(\s*[=:]\s*|\s+)(\"[^\"]*\"|'[^']*'|\S+)"
        ),
        r"\1\2[redacted]",
    ),
    (re.compile(r"\bcx_[A-Za-z0-9_-]{8,}"), "[api-key]"),
    (re.compile(r"\bEAA[A-Za-z0-9]{20,}"), "[token]"),  # Meta access tokens
    (re.compile(r"(?<![\w.])\+?\d[\d ()-]{6,}\d(?![\w.])"), "[phone]"),
    (re.compile(r"\b[A-Za-z0-9_-]{32,}\b"), "[secret]"),  # long random tokens
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
