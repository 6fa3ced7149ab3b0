"""The payload corpus (tests/fixtures/webhooks, built from Meta's documented format): every
message type stored once with normalised fields and its raw form, correctly routed, whatever the
batching, repetition and mix of workspaces."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from connectx.db.session import unit_of_work
from connectx.messages.service import RAW
from connectx.models.contact import Contact
from connectx.models.conversation import Conversation
from connectx.models.message import Message
from connectx.privacy.vault import Vault
from tests.whatsapp.support import (
    CUSTOMER_PHONE,
    DISPLAY_B,
    PNID_A,
    PNID_B,
    WABA_B,
    batch,
    connect,
    corpus,
    count,
    delivered,
    drain,
    for_number,
    load,
    messages_of,
    rows,
)
from tests.workspaces.helpers import Caller, owner_of

# What each corpus message must look like through the API (a subset of fields per type).
EXPECTED: dict[str, dict[str, Any]] = {
    "message_text": {"type": "text", "body": "Hello, is my order on its way?"},
    "message_image": {
        "type": "image",
        "body": "The box arrived damaged",
        "media": {
            "id": "1003383421387256",
            "mime_type": "image/jpeg",
            "sha256": "5a0e6a7c3c4b0f1d2e",
            "state": "pending",  # the download is queued with the message (connectx.media)
        },
    },
    "message_video": {"type": "video", "body": None, "media.id": "1012021193981391"},
    "message_audio_voice": {"type": "audio", "content.voice": True, "media.id": "1003383421387257"},
    "message_document": {
        "type": "document",
        "body": "Invoice",
        "content.filename": "invoice-2026-01.pdf",
        "media.mime_type": "application/pdf",
    },
    "message_sticker": {
        "type": "sticker",
        "content.animated": False,
        "media.id": "1003383421387259",
    },
    "message_location": {
        "type": "location",
        "body": "Main office",
        "content.location.latitude": 37.483307,
        "content.location.address": "1 Hacker Way, Menlo Park, CA 94025",
    },
    "message_contacts": {"type": "contacts", "content.contacts.0.name.formatted_name": "Jamie Lee"},
    "message_interactive_button_reply": {
        "type": "interactive",
        "body": "Yes, confirm",
        "content.interactive.id": "confirm-yes",
        "reply_to_wamid": "wamid.OUTBOUND1",
    },
    "message_interactive_list_reply": {
        "type": "interactive",
        "body": "Tuesday 10:00",
        "content.interactive.description": "In store",
    },
    "message_interactive_nfm_reply": {
        "type": "interactive",
        "content.interactive.response": {"flow_token": "abc", "size": "M"},
    },
    "message_button": {
        "type": "button",
        "body": "Stop promotions",
        "content.button.payload": "STOP_PROMOS",
        "reply_to_wamid": "wamid.TEMPLATE1",
    },
    "message_order": {
        "type": "order",
        "body": "Please deliver fast",
        "content.order.product_items.0.product_retailer_id": "sku-1",
    },
    "message_reply_with_context": {"type": "text", "reply_to_wamid": "wamid.TEXT1"},
    "message_forwarded": {"type": "text", "forwarded": True, "frequently_forwarded": True},
    "message_referral": {
        "type": "text",
        "content.referral.ctwa_clid": "ARAkLkA8rmlFeiCktEJQ",
        "content.referral.source_type": "ad",
    },
    "message_referred_product": {"content.referred_product.product_retailer_id": "sku-1"},
    "message_unsupported": {"type": "unsupported", "content.error.code": 131051},
    "message_unknown_type": {
        "type": "unsupported",
        "content.original_type": "hologram",
        "content.hologram.frames": 24,
    },
}


def dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


async def messages_via_api(owner: Caller) -> list[dict[str, Any]]:
    out = []
    for conv in (await owner.get("/api/v1/conversations")).json()["items"]:
        r = await owner.get(f"/api/v1/conversations/{conv['id']}/messages?limit=200")
        assert r.status_code == 200, r.text
        out.extend(r.json()["items"])
    return out


def test_the_corpus_covers_every_documented_message_type() -> None:
    names = set(corpus("message_"))
    assert names == set(EXPECTED)
    types = {m["type"] for name in names for m in messages_of(load(name))}
    documented = {
        "text",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "order",
        "unsupported",
    }
    assert documented <= types
    effects = {m["type"] for name in corpus("effect_") for m in messages_of(load(name))}
    assert effects == {"reaction", "edit", "revoke"}
    assert {m["type"] for n in corpus("system_") for m in messages_of(load(n))} == {"system"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_each_message_type_is_stored_once_normalised_with_its_raw_form(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any], name: str
) -> None:
    payload = load(name)
    await delivered(client, payload)
    await delivered(client, payload)  # Meta redelivers: still one message
    assert await drain() == {"processed": 2}
    (message,) = await messages_via_api(owner)
    for path, expected in EXPECTED[name].items():
        assert dig(message, path) == expected, (name, path, message)
    (original,) = messages_of(payload)
    assert message["wamid"] == original["id"]
    assert message["direction"] == "in" and message["status"] == "received"
    (row,) = await rows(Message)
    async with unit_of_work() as db:
        raw = await Vault(db).decrypt(
            row.workspace_id, f"contact:{row.contact_id}", RAW, row.raw_enc
        )
    assert json.loads(raw) == original


async def test_one_post_with_every_type_repeated_is_stored_exactly_once_each(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    payloads = [load(n) for n in sorted(EXPECTED)]
    big = batch(*payloads, *payloads)  # every entry twice in the same POST
    await delivered(client, big)
    await delivered(client, big)  # and the whole POST again
    await drain()
    wamids = sorted(m["id"] for p in payloads for m in messages_of(p))
    got = sorted(m["wamid"] for m in await messages_via_api(owner))
    assert got == wamids
    assert await count(Message) == len(EXPECTED)
    assert await count(Conversation) == 1
    assert await count(Contact) == 1


async def test_a_batch_of_1000_messages_is_processed_entirely(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    """Meta batches up to 1,000 updates per POST: every one of them is stored (Chatwoot kept only
    the first)."""
    template = messages_of(load("message_text"))[0]
    payload = load("message_text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] = [
        {**template, "id": f"wamid.BULK{i:04d}", "from": f"1650555{i:04d}", "from_user_id": None}
        for i in range(1000)
    ]
    value["contacts"] = [
        {"profile": {"name": f"Customer {i}"}, "wa_id": f"1650555{i:04d}"} for i in range(1000)
    ]
    await delivered(client, payload)
    await drain(timeout_s=300)
    assert await count(Message) == 1000
    assert await count(Contact) == 1000
    assert await count(Conversation) == 1000


async def test_two_workspaces_in_one_batch_are_routed_to_their_own_numbers(
    app: Any, client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    other, _ = await owner_of(app, "Second Business")
    await connect(other, pnid=PNID_B, waba=WABA_B, display=DISPLAY_B, verify_token=None)
    text_b = for_number(load("message_image"), PNID_B, WABA_B)
    await delivered(client, batch(load("message_text"), text_b, load("message_location")))
    await drain()

    mine = await messages_via_api(owner)
    theirs = await messages_via_api(other)
    assert sorted(m["type"] for m in mine) == ["location", "text"]
    assert [m["type"] for m in theirs] == ["image"]
    # The same person is a separate contact in each workspace, not visible across them.
    (c_mine,) = (await owner.get("/api/v1/contacts")).json()["items"]
    (c_theirs,) = (await other.get("/api/v1/contacts")).json()["items"]
    assert c_mine["phone"] == c_theirs["phone"] == CUSTOMER_PHONE
    assert c_mine["id"] != c_theirs["id"]
    assert (await other.get(f"/api/v1/contacts/{c_mine['id']}")).status_code == 404
    assert {r.phone_number_id for r in await rows(Message)} == {PNID_A, PNID_B}


async def test_other_fields_and_value_errors_are_kept_without_crashing(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    from connectx.models.webhook_event import WebhookEvent

    await delivered(client, load("other_fields"))
    await delivered(client, load("value_errors"))
    assert await drain() == {"processed": 2}
    ignored, errors = await rows(WebhookEvent, order_by=WebhookEvent.id)
    assert ignored.ignored == 2
    assert errors.items == 1
    assert await count(Message) == 0
