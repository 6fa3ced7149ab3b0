"""The card-number pre-scan in C (connectx/intake/cardscan.c) lets a body through untouched only
when masking's own checks would: never a body they would mask, on any placement of any run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from connectx.intake import cardscan, masking
from tests.privacy.test_pan import ARABIC_INDIC, digits
from tests.whatsapp.support import load
from tests.whatsapp.test_masking import CARD, RUN_PIECES

_FILES = [p.read_bytes() for p in Path("tests/fixtures/webhooks").rglob("*.json")]
# as the files hold them, and compact as Meta sends them (ids right after '":"')
BODIES = _FILES + [json.dumps(json.loads(b), separators=(",", ":")).encode() for b in _FILES]
SCAN = cardscan.bind(masking.IDENTIFIERS, masking._OTHER_DIGITS)
BYTEWISE = cardscan.bind(masking.IDENTIFIERS, masking._OTHER_DIGITS, bytewise=True)


def scans(body: bytes) -> bool:
    """The scan's answer (True: masking looks), the same 64 bytes a step and a byte a step."""
    assert SCAN is not None and BYTEWISE is not None
    answer = SCAN(body)
    assert BYTEWISE(body) is answer, body
    return answer


def python_would_look(body: bytes) -> bool:
    """masking.py's own first two checks: another script's digits, a long run outside
    identifiers (either one sends the body on to parsing)."""
    return masking._other_digits(body) or masking._card_run(body)


def test_the_pre_scan_is_built_and_used() -> None:
    """make install builds it (a C compiler is part of every machine the project runs on): a
    suite that silently tested only the Python path would prove nothing about it."""
    assert masking._SCAN is not None


def test_it_passes_only_what_masking_would_leave_alone() -> None:
    """The corpus and 6,000 bodies with runs, identifier values, escapes and non-ASCII text put
    anywhere (across the 64-byte steps too): whatever the scan passes, masking's checks pass."""
    rng = random.Random(19)
    pieces = [
        *RUN_PIECES,
        "\\u0664\\u0661",
        "caf\u00e9",
        "\\u00e9\\ud83d\\ude00",
        "\\ud835\\udfd2",  # mathematical bold 4, escaped as Meta would
        "\\ud835",
        "\\U0001d7d2",
        "\\u06",
        "\U0001d7d2",
        "مرحبا 😀",
        "\\\\u0664",
        "\\n\\/\\t",
        digits("4111", ARABIC_INDIC),
    ]
    answers = {True: 0, False: 0}
    for body in BODIES:
        answer = scans(body)
        assert answer or not python_would_look(body), body
        answers[answer] += 1
    for _ in range(6000):
        body = bytearray(rng.choice(BODIES))
        for _ in range(rng.randrange(0, 4)):
            at = rng.randrange(len(body) + 1)
            body[at:at] = rng.choice(pieces).encode()
        answer = scans(bytes(body))
        if not answer:
            assert not python_would_look(bytes(body)), bytes(body)
            assert masking.mask_in_python(bytes(body)) == bytes(body)
        answers[answer] += 1
    assert min(answers.values()) > 1000  # both answers, many times


@pytest.mark.parametrize("offset", range(0, 140, 3))
def test_runs_are_found_wherever_they_fall(offset: int) -> None:
    """Around and across the scan's 64-byte steps: a card anywhere is found, an identifier's
    compact value of any length is not, the same value spaced is."""
    pad = b'{"object":"' + b"x" * offset + b'",'
    assert scans(pad + b'"text":"' + CARD.encode() + b'"}')
    assert scans(pad + b'"text":"4111111111111111"}')
    assert scans(pad + b'"text":"1 2 3 4 5 6 7 8 9 0 1 2 3"}')
    assert not scans(pad + b'"text":"123456789012"}')  # 12 digits: no card
    assert not scans(pad + b'"id":"106540352242922"}')
    assert not scans(pad + b'"phone_number_id":"' + b"7" * 150 + b'"}')
    assert scans(pad + b'"phone_number_id":"4111 1111 1111 1111"}')
    assert scans(pad + b'"idx":"106540352242922"}')
    assert scans(pad + b'"text":"4111111111111111')  # the run ends the body
    assert not scans(pad + b'"text":"a\\/b\\n"}')


@pytest.mark.parametrize("offset", range(0, 140, 5))
def test_digits_of_other_scripts_are_found_raw_and_escaped(offset: int) -> None:
    """Other text beyond ASCII (accents, emoji, Arabic letters), raw UTF-8 or JSON escapes as
    Meta sends it, passes; a decimal digit of another script, either way and anywhere, does not
    (nor a surrogate pair that is one, nor what masking must decide: a \\U escape, a \\u
    without four hex digits, bytes that are not UTF-8)."""
    pad = b'{"object":"' + b"x" * offset + b'",'
    for text in ("café", "مرحبا", "😀🤔🧠👍🏽", "日本語 テキスト"):
        for ascii_only in (True, False):
            assert not scans(pad + json.dumps({"t": text}, ensure_ascii=ascii_only).encode())
    for digit in ("\u0664", "\u06f4", "\u0967", "\uff14", "\U0001d7d2"):
        for ascii_only in (True, False):
            body = pad + json.dumps({"t": "a" + digit}, ensure_ascii=ascii_only).encode()
            assert scans(body), body
    assert not scans(pad + b'"t":"\\\\u0664 typed as text"}')  # an escaped backslash
    assert scans(pad + b'"t":"\\\\\\u0664"}')  # an escaped backslash, then an escape
    assert scans(pad + b'"t":"\\U0001d7d2"}')
    assert scans(pad + b'"t":"\\u06"}')
    assert scans(pad + b'"t":"\\uzzzz"}')
    assert scans(pad + b'"t":"\xff\xfe"}')
    assert scans(pad + b'"t":"\xd9"}')  # cut short by the end of its string


def test_an_escape_split_by_a_step_is_found() -> None:
    """The backslash the last byte of one 64-byte step, its "u" the first of the next."""
    body = b"x" * 63 + b"\\u0664" + b"x" * 70
    assert scans(body)
    assert not scans(b"x" * 63 + b"\\n" + b"x" * 70)


def test_mask_body_masks_as_before() -> None:
    """With the scan in front, mask_body's answer is the Python path's for every body of the
    corpus and for cards in text."""
    for body in BODIES:
        assert masking.mask_body(body) == masking.mask_in_python(body)
    payload = load("message_text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = f"pay {CARD}"
    body = json.dumps(payload).encode()
    assert b"**** **** **** 1111" in masking.mask_body(body)
    assert CARD.encode() not in masking.mask_body(body)


def test_escaped_ascii_digits_spaces_and_hyphens_go_to_masking() -> None:
    """What no scan of the bytes reads as a digit or separator is left to masking to decode."""
    for escape in (b"\\u0030", b"\\u0039", b"\\u0020", b"\\u002d", b"\\u002D"):
        assert scans(b'{"t":"a' + escape + b'b"}'), escape
    assert not scans(b'{"t":"a\\u0041\\u003a\\u002fb"}')  # "A", ":", "/"
    assert not scans(b'{"t":"a\\\\u0034b"}')  # an escaped backslash, then "u0034"


def test_without_a_compiler_the_build_says_so_and_install_goes_on() -> None:
    """scripts/build-native.sh on a machine with no C compiler: a note, exit 0 (make install
    continues; intake masks in Python), and nothing written next to the source."""
    import subprocess
    import sys

    before = sorted(Path("src/connectx/intake").iterdir())
    done = subprocess.run(
        ["sh", "scripts/build-native.sh", sys.executable],
        env={"PATH": "/usr/bin:/bin", "CC": "no-such-compiler"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pre-scan is not built" in done.stderr
    assert sorted(Path("src/connectx/intake").iterdir()) == before


def test_serve_says_when_the_pre_scan_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """``connectx serve`` without the module: the platform starts and tells the operator why
    intake is slower; with it, no such note."""
    import uvicorn
    from typer.testing import CliRunner

    from connectx.cli import app as cli

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    for built in (False, True):
        monkeypatch.setattr(cardscan, "built", lambda built=built: built)
        result = CliRunner().invoke(cli, ["serve", "--no-migrate", "--port", "8999"])
        assert result.exit_code == 0, result.output
        assert ("pre-scan" in result.output) is not built
