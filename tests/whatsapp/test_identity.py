"""Contacts keyed by BSUID when present and by phone otherwise, linked when both are seen,
working without a phone, and kept current by system messages."""

from __future__ import annotations

from typing import Any

import httpx

from connectx.models.contact import Contact
from connectx.models.conversation import Conversation
from connectx.models.message import Message
from tests.whatsapp.support import (
    CUSTOMER_BSUID,
    CUSTOMER_PHONE,
    count,
    delivered,
    drain,
    load,
    rows,
)
from tests.workspaces.helpers import Caller


async def contacts(owner: Caller, **params: Any) -> list[dict[str, Any]]:
    r = await owner.get("/api/v1/contacts", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_a_username_user_without_a_phone_is_a_contact_by_bsuid(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("identity_bsuid_only"))  # from: "" and wa_id: ""
    await delivered(client, load("identity_missing_from"))  # no from at all
    await drain()
    people = {c["bsuid"]: c for c in await contacts(owner)}
    assert set(people) == {"US.99887766554433221100", "US.55554444333322221111"}
    quiet = people["US.99887766554433221100"]
    assert quiet["phone"] is None and quiet["name"] == "Quiet User"
    assert quiet["username"] == "@quiet"
    assert await count(Message) == 2


async def test_phone_first_then_bsuid_links_to_the_same_contact(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("identity_phone_only"))
    await drain()
    (before,) = await contacts(owner)
    assert before["phone"] == "+447700900123" and before["bsuid"] is None
    await delivered(client, load("identity_phone_and_bsuid"))
    await drain()
    (after,) = await contacts(owner)
    assert after["id"] == before["id"]
    assert after["bsuid"] == "GB.1122334455667788990"
    assert await count(Conversation) == 1


async def test_two_contacts_that_turn_out_to_be_one_person_are_merged(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    """A BSUID-only message and a phone-only message make two contacts; a message naming both
    identifiers merges them, with their conversations and messages, readable afterwards."""
    bsuid_only = load("identity_phone_and_bsuid")
    value = bsuid_only["entry"][0]["changes"][0]["value"]
    value["messages"][0].update({"from": "", "id": "wamid.MERGE_B"})
    value["messages"][0]["text"]["body"] = "sent as a username"
    value["contacts"][0]["wa_id"] = ""
    await delivered(client, bsuid_only)
    await delivered(client, load("identity_phone_only"))
    await drain()
    assert await count(Contact) == 2
    assert await count(Conversation) == 2

    await delivered(client, load("identity_phone_and_bsuid"))
    await drain()
    (person,) = await contacts(owner)
    assert person["phone"] == "+447700900123" and person["bsuid"] == "GB.1122334455667788990"
    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    r = await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")
    bodies = sorted(m["body"] for m in r.json()["items"])
    assert bodies == ["now with a BSUID", "phone only, before BSUIDs", "sent as a username"]
    assert {m.contact_id for m in await rows(Message)} == {person["id"]}


async def test_user_changed_number_moves_the_contact_to_the_new_phone(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("message_text"))
    await drain()
    (before,) = await contacts(owner)
    assert before["phone"] == CUSTOMER_PHONE
    await delivered(client, load("system_user_changed_number"))
    await drain()
    (after,) = await contacts(owner)
    assert after["id"] == before["id"]
    assert after["phone"] == "+12195555358"
    assert (await contacts(owner, phone="+1 219 555 5358"))[0]["id"] == before["id"]
    assert await contacts(owner, phone=CUSTOMER_PHONE) == []
    types = [m.type for m in await rows(Message, order_by=Message.id)]
    assert types == ["text", "system"]


async def test_user_changed_user_id_and_identity_change_are_recorded(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("message_text"))
    await drain()
    await delivered(client, load("system_user_changed_user_id"))
    await delivered(client, load("system_customer_identity_changed"))
    await drain()
    (person,) = await contacts(owner)
    assert person["bsuid"] == "US.10000000000000000001"
    assert person["phone"] == CUSTOMER_PHONE
    assert person["identity_changed_at"] is not None
    assert person["bsuid"] != CUSTOMER_BSUID


async def test_contact_fields_are_encrypted_and_searchable_only_by_keyed_hash(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    from sqlalchemy import text

    from connectx.db.session import unit_of_work

    await delivered(client, load("message_text"))
    await drain()
    dump = b""
    async with unit_of_work() as db:
        for table in ("contacts", "messages", "conversations", "webhook_events"):
            for row in (await db.execute(text(f"SELECT * FROM {table}"))).all():
                dump += b"".join(
                    bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row
                )
    for plain in (b"Sheena Nelson", b"16505551234", CUSTOMER_BSUID.encode(), b"order on its way"):
        assert plain not in dump
    (found,) = await contacts(owner, phone="+1 (650) 555-1234")
    assert found["name"] == "Sheena Nelson"
    r = await owner.get("/api/v1/contacts", params={"phone": "not a phone"})
    assert r.status_code == 422
