"""Card numbers typed into WhatsApp messages are masked before anything is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectx.db.session import unit_of_work
from connectx.intake.batcher import day_subject
from connectx.intake.raw_body import open_body
from connectx.messages.service import RAW
from connectx.models.message import Message
from connectx.models.webhook_event import WebhookEvent
from connectx.privacy.vault import Vault
from tests.privacy.test_pan import ARABIC_INDIC, FULLWIDTH, MATH_BOLD, PERSIAN, digits
from tests.whatsapp.support import delivered, drain, load, rows
from tests.workspaces.helpers import Caller

CARD = "4111 1111 1111 1111"


async def kept() -> tuple[str, str]:
    """The one message's raw JSON and the one raw webhook body, as stored (opened)."""
    (row,) = await rows(Message)
    (event,) = await rows(WebhookEvent)
    async with unit_of_work() as db:
        vault = Vault(db)
        raw = await vault.decrypt(row.workspace_id, f"contact:{row.contact_id}", RAW, row.raw_enc)
        body = (await open_body(vault, day_subject(event.received_at), event.body_enc)).decode()
    return raw, body


async def test_a_card_number_in_a_message_is_masked_everywhere_it_is_kept(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    payload = load("message_image")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["image"]["caption"] = f"my card is {CARD}, exp 09/27"
    await delivered(client, payload)
    await drain()

    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    (shown,) = (await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")).json()[
        "items"
    ]
    assert shown["body"] == "my card is **** **** **** 1111, exp 09/27"
    # Identifiers that look like long numbers are left alone.
    assert shown["media"]["id"] == "1003383421387256"

    raw, body = await kept()
    for stored in (raw, body):
        assert CARD not in stored and "**** **** **** 1111" in stored
    assert '"phone_number_id":"106540352242922"' in body  # routing ids untouched


# Runs of every shape, and identifier keys and look-alikes before them (test_cardscan.py uses
# them too).
RUN_PIECES = [
    CARD,
    "4111111111111111",
    "4111-1111-1111-1111",
    "1 2 3 4 5 6 7 8 9 0 1 2 3",
    "123456789012",
    "1234567890123",
    " -12345678901234- ",
    "+4111111111111111",
    ".4111111111111111",
    "a4111111111111111",
    "  --  ",
    "9",
    # after identifier keys and look-alikes (the run's context is read backwards)
    '"id":"4111111111111111"',
    '"wa_id" : 4111111111111111',
    '"phone_number_id":\t"4111 1111 1111 1111"',
    '"idx":"4111111111111111"',
    '"xid":"4111111111111111"',
    '\\"id\\":4111111111111111',
    '"id""4111111111111111"',
    '"id":""4111111111111111',
    ':"4111111111111111',
    '"original_message_id"      :      "4111111111111111"',
    # compact, as Meta writes them (masking._compact_identifier's shortcut), and near misses
    '"phone_number_id":"4111111111111111"',
    '"phone_number_id":"4111111111111111 1"',
    '"from":"4111111111111111-"',
    '"caption":"4111111111111111"',
    '":"4111111111111111"',
    '"x"id":"4111111111111111"',
    '"id":"4111111111111111  4111111111111111"',
]


def _scan_whole_body(body: bytes) -> bool:
    """The pre-check as it was written first: both expressions over the whole body."""
    from connectx.intake.masking import _CARRIERS, _KEYED, _RUN

    if not _CARRIERS.search(body):
        return False
    for match in _RUN.finditer(body):
        if not _KEYED.search(body, max(0, match.start() - 40), match.start()):
            return True
    return False


def test_the_fast_pre_check_answers_as_the_whole_body_scan() -> None:
    """might_hold_a_card finds runs only inside long stretches of digits, spaces and hyphens;
    over the corpus and 6,000 bodies with runs of every shape, placed anywhere, it answers as
    scanning the whole body does."""
    import json
    import random
    from pathlib import Path

    from connectx.intake.masking import might_hold_a_card

    bodies = [p.read_bytes() for p in Path("tests/fixtures/webhooks").rglob("*.json")]
    assert len(bodies) > 20
    rng = random.Random(6)
    answers = {True: 0, False: 0}
    for _ in range(6000):
        body = bytearray(rng.choice(bodies))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(body) + 1)
            body[at:at] = rng.choice(RUN_PIECES).encode()
        if rng.random() < 0.3:  # a key that carries text, sometimes spaced before its colon
            body[1:1] = rng.choice([b'"messages": ', b'"history"  :', b'"statuses":']) + b"0,"
        answer = might_hold_a_card(bytes(body))
        assert answer == _scan_whole_body(bytes(body)), bytes(body)
        answers[answer] += 1
    assert min(answers.values()) > 1000  # both answers, many times
    payload = load("message_text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = f"pay {CARD}"
    assert might_hold_a_card(json.dumps(payload).encode())


ARABIC_CARD = digits(CARD, ARABIC_INDIC)  # typed on an Arabic keyboard


@pytest.mark.parametrize("escaped", [True, False], ids=["json-escapes", "utf-8"])
async def test_a_card_number_in_arabic_indic_digits_is_masked_everywhere_it_is_kept(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any], escaped: bool
) -> None:
    """Meta may send text as JSON escapes ("\\u0664") or as UTF-8: neither is a digit to a scan of
    the bytes, and the Luhn check read the digits' code points as ASCII's."""
    import json

    payload = load("message_text")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["text"]["body"] = f"بطاقتي {ARABIC_CARD} شكرا"
    await delivered(client, json.dumps(payload, ensure_ascii=escaped).encode())
    await drain()

    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    (shown,) = (await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")).json()[
        "items"
    ]
    assert shown["body"] == f"بطاقتي {digits('**** **** **** 1111', ARABIC_INDIC)} شكرا"
    raw, body = await kept()
    for stored in (raw, body):
        text = json.dumps(json.loads(stored), ensure_ascii=False)
        assert ARABIC_CARD not in text
        assert digits("**** **** **** 1111", ARABIC_INDIC) in text


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (ARABIC_CARD, True),
        (digits("1", ARABIC_INDIC), True),
        (digits("4", PERSIAN), True),
        (digits("4", FULLWIDTH), True),
        (digits("4", MATH_BOLD), True),  # outside the BMP: a surrogate pair when escaped
        ("مرحبا كيف حالك", False),
        ("😀🤔🧠👍🏽", False),
        ("\\u0664 typed as text", False),  # an escaped backslash, then "u0664"
        ("4111 1111 1111 1111", False),  # ASCII digits: might_hold_a_card's part
    ],
)
def test_the_pre_check_finds_digits_of_other_scripts_raw_and_escaped(
    text: str, found: bool
) -> None:
    import json

    from connectx.intake.masking import might_hold_other_digits

    payload = load("message_text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = text
    for escaped in (True, False):
        assert might_hold_other_digits(json.dumps(payload, ensure_ascii=escaped).encode()) is found
    status = load("statuses_out_of_order")  # no text of people's: never parsed
    status["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = text
    assert not might_hold_other_digits(json.dumps(status).encode())


@pytest.mark.parametrize(
    "typed",
    [
        "\\u0034111 1111 1111 1111",  # an ASCII digit as an escape
        "4111\\u00201111\\u00201111\\u00201111",  # its spaces as escapes
        "4111\\u002D1111\\u002d1111-1111",  # its hyphens
    ],
)
def test_a_card_typed_with_escaped_ascii_characters_is_masked(typed: str) -> None:
    """Meta's encoder never escapes ASCII, but a card whose digits, spaces or hyphens come as
    JSON escapes is a card once decoded: the body is parsed and the card masked, with the
    pre-scan in C and without it."""
    import json

    from connectx.intake.masking import mask_body, mask_in_python

    payload = load("message_text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "card XXXX ok"
    body = json.dumps(payload, separators=(",", ":")).encode().replace(b"XXXX", typed.encode())
    for mask in (mask_body, mask_in_python):
        stored = json.loads(mask(body))
        text = stored["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"]
        assert text in ("card **** **** **** 1111 ok", "card ****-****-****-1111 ok"), text
