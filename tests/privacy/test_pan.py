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


def digits(text: str, zero: str) -> str:
    """``text`` with its ASCII digits written in the script whose zero is ``zero``."""
    return text.translate({48 + d: chr(ord(zero) + d) for d in range(10)})


ARABIC_INDIC, PERSIAN, DEVANAGARI, FULLWIDTH, MATH_BOLD = (
    "\u0660",
    "\u06f0",
    "\u0966",
    "\uff10",
    "\U0001d7ce",
)


@pytest.mark.parametrize(
    ("text", "masked", "zero"),
    [
        ("my card 4111 1111 1111 1111 thanks", "my card **** **** **** 1111 thanks", ARABIC_INDIC),
        ("5500-0000-0000-0004", "****-****-****-0004", PERSIAN),
        ("4111111111111111", "************1111", FULLWIDTH),
        ("4111 1111 1111 1111", "**** **** **** 1111", DEVANAGARI),
        ("4111111111111111", "************1111", MATH_BOLD),
    ],
)
def test_card_numbers_in_other_scripts_digits_are_masked(text: str, masked: str, zero: str) -> None:
    """A card typed on an Arabic (or Persian, Hindi, CJK...) keyboard is a card: the Luhn check
    read such digits' code points as if they were ASCII's, so nearly all were kept whole."""
    text, masked = digits(text, zero), digits(masked, zero)
    assert mask_pans(text) == masked
    assert contains_pan(text)
    assert mask_pans(masked) == masked
    mixed = digits("4111 ", zero) + "1111 " + digits("1111 ", zero) + "1111"
    assert mask_pans(mixed) == "**** **** **** 1111"


@pytest.mark.parametrize(
    "text",
    [
        digits("4111 1111 1111 1112", ARABIC_INDIC),  # fails the Luhn check
        digits("+971501234567890", ARABIC_INDIC),  # a phone number
        "\u00b2\u00b3" * 8,  # superscripts: digits, but no decimal ones
    ],
)
def test_other_scripts_numbers_that_are_no_card_are_left_alone(text: str) -> None:
    assert mask_pans(text) == text


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
    assert luhn_valid(digits("79927398713", ARABIC_INDIC))
    assert not luhn_valid(digits("79927398710", ARABIC_INDIC))
    assert not luhn_valid("\u00b2")
