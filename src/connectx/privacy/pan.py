"""Mask payment card numbers (PANs) typed into free text before it is stored or logged.

A card number is a run of 13 to 19 digits, optionally grouped by single spaces or hyphens, that
passes the Luhn check. Digits are the decimal digits of any script (Arabic-Indic U+0660-0669,
Persian, Devanagari, fullwidth...: a card typed on an Arabic keyboard is still one).
Such a run keeps its last four digits (in their script) and its grouping; every other digit
becomes ``*`` ("4111 1111 1111 1111" -> "**** **** **** 1111"). A run that is longer than a card
number is searched for a card number made of whole groups (a card typed with its expiry date).
A run that starts with ``+`` is a phone number and is left alone; so is a run glued to letters
or to a decimal point (an id, an amount). About one random 13-19 digit number in ten passes the
Luhn check, so an order number can occasionally be masked: we prefer that to storing a card.
"""

from __future__ import annotations

import re

MIN_DIGITS = 13
MAX_DIGITS = 19

# Digits separated by at most one space or hyphen, not touching a word character, a '+' before
# or a decimal point ("12.5", "4111111111111111.50").
_RUN = re.compile(r"(?<![\w+])(?<!\d\.)\d(?:[ -]?\d)+(?!\w|\.\d|[ -]?\d)")


def luhn_valid(digits: str) -> bool:
    """The Luhn check of decimal digits of any script ("٤١١١…" is checked as "4111…")."""
    if not digits.isdecimal():  # (not isdigit: "²" is a digit, but no decimal one)
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_pan(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and luhn_valid(digits)


def _mask(text: str) -> str:
    digits = sum(ch.isdigit() for ch in text)
    out = []
    seen = 0
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 4 else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_run(run: str) -> str:
    if _is_pan(run):
        return _mask(run)
    # Look for a card number made of consecutive whole groups ("4111 1111 1111 1111 0927").
    parts = re.split(r"([ -])", run)
    groups = parts[0::2]
    seps = parts[1::2]
    for size in range(len(groups) - 1, 0, -1):
        for start in range(len(groups) - size + 1):
            chunk = groups[start : start + size]
            candidate = "".join(
                g + (seps[start + i] if i < size - 1 else "") for i, g in enumerate(chunk)
            )
            if _is_pan(candidate):
                before = "".join(g + seps[i] for i, g in enumerate(groups[:start]))
                after = "".join(
                    seps[start + size - 1 + i] + g for i, g in enumerate(groups[start + size :])
                )
                return before + _mask(candidate) + after
    return run


def mask_pans(text: str) -> str:
    """``text`` with every Luhn-valid card number masked to its last four digits."""
    if sum(ch.isdigit() for ch in text) < MIN_DIGITS:
        return text
    return _RUN.sub(lambda m: _mask_run(m.group(0)), text)


def contains_pan(text: str) -> bool:
    return mask_pans(text) != text
