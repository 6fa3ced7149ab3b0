"""Processing reads a raw body's JSON as ``json.loads`` reads bytes, whatever its encoding, with
the processor's number rules (NaN and infinities absent)."""

from __future__ import annotations

import json

import pytest

from connectx.intake import dispatch

DOCUMENT = {"object": "whatsapp_business_account", "entry": [{"id": "1", "name": "Zoë ✓ 😀"}]}


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]
)
def test_every_encoding_json_accepts_reads_the_same(encoding: str) -> None:
    body = json.dumps(DOCUMENT, ensure_ascii=False).encode(encoding)
    assert dispatch._JSON.decode(dispatch._json_text(body)) == json.loads(body) == DOCUMENT


def test_lone_surrogates_pass_as_json_loads_lets_them() -> None:
    body = b'{"a": "x' + "\ud800".encode("utf-8", "surrogatepass") + b'"}'
    assert dispatch._JSON.decode(dispatch._json_text(body)) == json.loads(body)


def test_numbers_out_of_range_and_not_numbers_read_as_absent() -> None:
    body = b'{"a": 1e400, "b": NaN, "c": -Infinity, "d": 1.5, "e": 7}'
    assert dispatch._JSON.decode(dispatch._json_text(body)) == {
        "a": None,
        "b": None,
        "c": None,
        "d": 1.5,
        "e": 7,
    }


def test_bytes_that_are_no_text_fail_as_before() -> None:
    with pytest.raises(UnicodeDecodeError):
        dispatch._json_text(b'{"a": "\xff"}')
    with pytest.raises(ValueError):
        json.loads(b'{"a": "\xff"}')
