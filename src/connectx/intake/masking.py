"""Card numbers typed into messages are masked before a webhook body is stored.

The signature is checked on the bytes Meta sent; what is stored is the same JSON with every
Luhn-valid card-number run in free text replaced by ``**** **** **** 1111`` (privacy/pan.py).
Identifier fields (ids, phone numbers, timestamps) are left alone so routing and deduplication
still work. Bodies without anything that looks like a card number are stored byte for byte.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from typing import Any

from connectx.intake import cardscan
from connectx.privacy.pan import contains_pan, mask_pans

IDENTIFIERS = frozenset(
    {
        "id",
        "wa_id",
        "from",
        "to",
        "recipient_id",
        "phone_number_id",
        "display_phone_number",
        "user_id",
        "from_user_id",
        "recipient_user_id",
        "parent_user_id",
        "timestamp",
        "message_id",
        "original_message_id",
        "expiration_timestamp",
        "catalog_id",
        "product_retailer_id",
        "message_template_id",
        "sha256",
        "mime_type",
        "source_id",
        "ctwa_clid",
        "code",
    }
)


def _walk(value: Any, key: str | None) -> tuple[Any, bool]:
    if isinstance(value, str):
        if key in IDENTIFIERS:
            return value, False
        masked = mask_pans(value)
        return masked, masked != value
    if isinstance(value, dict):
        changed = False
        out = {}
        for k, v in value.items():
            out[k], c = _walk(v, k)
            changed |= c
        return out, changed
    if isinstance(value, list):
        changed = False
        items = []
        for v in value:
            item, c = _walk(v, key)
            items.append(item)
            changed |= c
        return items, changed
    return value, False


# A run of 13+ digits (spaces or hyphens allowed between them), as privacy/pan.py looks for, in
# bytes; and what precedes the value of an identifier field ("phone_number_id":"…).
_RUN = re.compile(rb"(?<![\w+.])\d(?:[ -]?\d){12,}")
_KEYED = re.compile(
    rb'"(?:' + b"|".join(k.encode() for k in sorted(IDENTIFIERS)) + rb')"\s*:\s*"?$'
)


# Only these fields carry text people typed (Meta's own texts, in statuses, errors, preferences
# and template updates, hold no card numbers).
_CARRIERS = re.compile(rb'"(?:messages|message_echoes|history)"\s*:')
_CARRIER_KEYS = (b'"messages"', b'"message_echoes"', b'"history"')

# Every byte a run can hold (digits, space, hyphen) as "0", any other as ".": a run lies inside
# a stretch of 13 or more "0"s of this shape, which bytes.find finds at C speed.
_SHAPE = bytes(0x30 if c in b"0123456789 -" else 0x2E for c in range(256))
_STRETCH = b"0" * 13


# A JSON escape. Found by the expression's literal search: ``b"\\u" in body`` compares at
# every "u" of the text and took twice as long or more (~10 vs ~4-6 µs, a 12 kB body, session 15).
_ESCAPE = re.compile(rb"\\u")
# An ASCII digit, space or hyphen written as a JSON escape: Meta's encoder never writes one, but
# a card typed with them would be one (the body is parsed and its strings masked, as for other
# scripts' digits).
_ESCAPED_ASCII_DIGIT = re.compile(rb"\\u00(?:3[0-9]|20|2d)", re.IGNORECASE)

# A decimal digit outside ASCII (Arabic-Indic, Persian, Devanagari, fullwidth, ...: what ``\d``
# matches and privacy/pan.py reads as digits).
_OTHER_DIGIT = re.compile(r"[^\D0-9]")


# The decimal digits beyond ASCII (Unicode category Nd: what ``\\d`` matches in text and
# privacy/pan.py reads as digits), found once.
_OTHER_DIGITS = [
    cp for cp in range(0x80, sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Nd"
]


def _surrogate_digits() -> re.Pattern[str]:
    """A decimal digit outside the BMP (mathematical bold, ...) as the two lone surrogates that
    ``raw_unicode_escape`` decodes its JSON escape to (a few other pairs match too: they only
    cost a parse)."""
    highs, lows = set(), set()
    for cp in _OTHER_DIGITS:
        if cp >= 0x10000:
            highs.add(chr(0xD800 + ((cp - 0x10000) >> 10)))
            lows.add(chr(0xDC00 + ((cp - 0x10000) & 0x3FF)))
    return re.compile(f"[{''.join(sorted(highs))}][{''.join(sorted(lows))}]")


_SURROGATE_DIGIT = _surrogate_digits()
_SCAN = cardscan.bind(IDENTIFIERS, _OTHER_DIGITS)


def _carries_text(body: bytes) -> bool:
    """Whether ``body`` has one of the keys under which people's text travels."""
    first = -1
    for key in _CARRIER_KEYS:  # each later key looked for only before the earliest found
        at = body.find(key) if first < 0 else body.find(key, 0, first)
        if at >= 0:
            first = at
    return first >= 0 and _CARRIERS.search(body, first) is not None  # starts at one of them


def might_hold_other_digits(body: bytes) -> bool:
    """People's text with a decimal digit of another script than ASCII in it, raw or as a JSON
    escape (which no scan of the bytes or of the undecoded text reads as a digit): such a body is
    parsed and its strings masked (a card typed in Arabic-Indic digits is a card)."""
    return _carries_text(body) and _other_digits(body)


def _other_digits(body: bytes) -> bool:
    """:func:`might_hold_other_digits` of a body already known to carry people's text."""
    if not body.isascii() and _OTHER_DIGIT.search(body.decode("utf-8", "replace")):
        return True
    # JSON escapes (``\\u0664``) decoded, nothing else (raw_unicode_escape leaves other
    # backslashes and an escaped backslash's "\\u" alone; other bytes read as Latin-1, which
    # has no decimal digit but ASCII's).
    if _ESCAPE.search(body) is None:
        return False
    if _ESCAPED_ASCII_DIGIT.search(body):  # "\u0034": what no scan of the bytes reads
        return True
    unescaped = body.decode("raw_unicode_escape", "replace")
    return bool(_OTHER_DIGIT.search(unescaped) or _SURROGATE_DIGIT.search(unescaped))


def might_hold_a_card(body: bytes) -> bool:
    """Cheap pre-check on the raw bytes: people's text, with a long digit run outside identifier
    fields. Status callbacks, and messages whose only long runs are ids, are answered here
    without parsing.

    The same answer as scanning the whole body with ``_CARRIERS`` and ``_RUN``, found faster
    (a 50-update body: ~230 -> ~25 µs, session 6): the carrier keys by ``bytes.find`` first, and
    ``_RUN`` only over the stretches of digits, spaces and hyphens that are long enough to hold a
    run (a regular expression tried at every digit of a body full of ids and timestamps cost
    ~15 µs per kilobyte). tests/whatsapp/test_masking.py compares the two."""
    return _carries_text(body) and _card_run(body)


_IDENTIFIER_KEYS = frozenset(key.encode() for key in IDENTIFIERS)


def _compact_identifier(body: bytes, at: int, end: int) -> bool:
    """Whether the stretch ``body[at:end]`` is all digits and the value of an identifier field
    written as Meta writes them (``"phone_number_id":"1065…``): the one run ``_RUN`` would find
    there, and ``_KEYED`` would find it keyed. Every update's ids are such stretches; this
    answers them with a few comparisons instead of the two expressions (~1.5 µs a stretch)."""
    if body[at - 3 : at] != b'":"' or not body[at:end].isdigit():
        return False
    opening = body.rfind(b'"', 0, at - 3)
    return opening >= 0 and body[opening + 1 : at - 3] in _IDENTIFIER_KEYS


def _card_run(body: bytes) -> bool:
    """Whether ``body`` has a long digit run outside identifier fields (``_RUN`` not keyed)."""
    shape = body.translate(_SHAPE)
    at = shape.find(_STRETCH)
    while at >= 0:
        end = shape.find(b".", at)
        if end < 0:
            end = len(body)
        if not _compact_identifier(body, at, end):
            for match in _RUN.finditer(body, at, end):  # (the look-behind sees before ``at``)
                if not _KEYED.search(body, max(0, match.start() - 40), match.start()):
                    return True
        at = shape.find(_STRETCH, end)
    return False


SMALL = 2048  # bytes: a single update is ~0.5-1.5 kB


def mask_body(body: bytes) -> bytes:
    """``body`` with card numbers masked (unchanged when it holds none).

    The pre-scan in C (:mod:`.cardscan`: all ASCII, no ``\\u`` escape, no long run outside
    identifiers, ~2 µs for 50 updates) answers most deliveries; the rest, or all where it is
    not built, go through :func:`mask_in_python`."""
    if _SCAN is not None and not _SCAN(body):
        return body
    return mask_in_python(body)


def mask_in_python(body: bytes) -> bytes:
    """:func:`mask_body` without the pre-scan in C.

    Three checks, each enough to leave the body as it is: people's text (the carriers' keys),
    another script's digits, a long run outside identifiers. In a single update (under
    :data:`SMALL`) the keys are looked for first: three short scans, and they end most
    deliveries there (status callbacks: ~0.9 µs). In a larger body they are looked for last:
    "messages" comes after a batch's contacts and the other keys are looked for up to it (~9 µs
    for 50 updates), while the other two checks answer most batches by themselves (~15 µs)."""
    small = len(body) < SMALL
    if small and not _carries_text(body):
        return body
    other_digits = _other_digits(body)
    if not other_digits and not _card_run(body):
        return body
    if not small and not _carries_text(body):
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    if not other_digits and not contains_pan(text):  # (escaped digits are no digits in it)
        return body
    try:
        payload = json.loads(text)
    except ValueError:
        return mask_pans(text).encode()
    masked, changed = _walk(payload, None)
    if not changed:
        return body
    # (ASCII escapes where a string holds an unpaired surrogate, which UTF-8 cannot hold)
    dumped = json.dumps(masked, ensure_ascii=False, separators=(",", ":"))
    try:
        return dumped.encode()
    except UnicodeEncodeError:
        return json.dumps(masked, separators=(",", ":")).encode()
