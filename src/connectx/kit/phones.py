"""Phone numbers are validated and stored in E.164 (``phonenumbers``)."""

from __future__ import annotations

import phonenumbers

from connectx.kit.errors import InvalidInput


def to_e164(raw: str, default_region: str | None = None) -> str:
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(
            "Phone number is not valid: give it in international form, e.g. +971501234567.",
            field="phone",
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(
            "Phone number is not valid: give it in international form, e.g. +971501234567.",
            field="phone",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
