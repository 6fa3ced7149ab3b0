"""Card numbers typed into free text are masked (privacy/pan.py)."""

from __future__ import annotations

import pytest

from connectx.privacy.pan import contains_pan, luhn_valid, mask_pans


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4111111111111111", "************1111"),
        ("my card is 4111 1111 1111 1111 thanks", "my card is **** **** **** 1111 thanks"),
        ("5500-0000-0000-0004", "****-****-****-0004"),
        ("amex 3782 822463 10005.", "amex **** ****** *0005."),
        ("card:4012888888881881,exp 12/27", "card:************1881,exp 12/27"),
        ("4111 1111 1111 1111 0927", "**** **** **** 1111 0927"),  # card then expiry
        ("two 4111111111111111 and 5555555555554444", "two ************1111 and ************4444"),
        ("6011 0009 9013 9424", "**** **** **** 9424"),
    ],
)
def test_luhn_valid_card_numbers_keep_only_their_last_four_digits(text: str, masked: str) -> None:
    assert mask_pans(text) == masked
    assert contains_pan(text)
    assert mask_pans(masked) == masked  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # fails the Luhn check
        "order 1234567890123",  # 13 digits, not Luhn-valid
        "call me on +44 7911 123456 or +971501234567",  # phone numbers
        "+4111111111111111",  # a '+' run is a phone number
        "meeting 2026-11-27 10:30, ref 12345",
        "invoice INV4111111111111111",  # glued to letters: an id
        "total 4111111111111111.50",  # an amount
        "4111 1111",  # too short
        "41111111111111111111111",  # 23 digits, no card made of whole groups
        "",
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_pans(text) == text
    assert not contains_pan(text)


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("4111a111")
