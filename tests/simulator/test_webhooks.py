"""Webhooks the simulator sends to a real aiohttp receiver on loopback: signed with the app secret
over the exact bytes, every documented inbound type (read back with the platform's own parser),
status callbacks with pricing, chaos (out of order, duplicates), batching, retries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectx.integrations.whatsapp import inbound
from connectx.integrations.whatsapp.signature import find_signer
from tests.simulator.support import ANA, PNID, SECRET, WABA, Sim, running

BEN = "447700900123"
CARLA_BSUID = "BR.10000000000000000199"


async def test_signature_is_hmac_of_the_exact_bytes_with_the_app_secret(sim: Sim) -> None:
    said = await sim.customer_says(ANA, {"type": "text", "text": "Olá, é o João / 100%"})
    [hook] = await sim.receiver.wait_for(1)
    assert hook.signature_valid(SECRET)
    assert not hook.signature_valid("another-secret")
    assert hook.headers["Content-Type"] == "application/json"
    # the platform's own check agrees, over the bytes as received
    assert find_signer([("app", SECRET.encode())], hook.body, hook.headers["X-Hub-Signature-256"])
    # Meta escapes non-ASCII and slashes: re-serialising the JSON changes the bytes, so a
    # receiver that hashes parsed-and-dumped JSON would fail, as it would with Meta
    assert b"\\u00e1" in hook.body and b"\\/" in hook.body
    reserialised = json.dumps(hook.json).encode()
    assert reserialised != hook.body
    assert not find_signer(
        [("app", SECRET.encode())], reserialised, hook.headers["X-Hub-Signature-256"]
    )
    payload = hook.json
    assert payload["object"] == "whatsapp_business_account"
    [entry] = payload["entry"]
    assert entry["id"] == WABA
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "15550100001", "phone_number_id": PNID}
    assert value["contacts"] == [
        {"profile": {"name": "Ana Silva"}, "wa_id": ANA, "user_id": "US.10000000000000000101"}
    ]
    [message] = value["messages"]
    assert message["from"] == ANA and message["from_user_id"] == "US.10000000000000000101"
    assert message["id"] == said["wamid"] and message["type"] == "text"
    assert message["text"] == {"body": "Olá, é o João / 100%"}
    assert message["timestamp"].isdigit()


async def test_each_app_signs_with_its_own_secret() -> None:
    apps = [
        {"app_id": "300000000000001", "app_secret": "secret-one"},
        {"app_id": "300000000000002", "app_secret": "secret-two"},
    ]
    numbers = [
        {},
        {
            "phone_number_id": "100000000000002",
            "display_phone_number": "+15550100002",
            "waba_id": "200000000000002",
            "access_token": "t2",
            "app_id": "300000000000002",
        },
    ]
    async with running({"apps": apps, "numbers": numbers}) as sim:
        await sim.customer_says(ANA, {"type": "text", "text": "one"})
        await sim.customer_says(
            ANA, {"type": "text", "text": "two", "phone_number_id": "100000000000002"}
        )
        hooks = await sim.receiver.wait_for(2)
        by_text = {h.messages()[0]["text"]["body"]: h for h in hooks}
        assert by_text["one"].signature_valid("secret-one")
        assert by_text["two"].signature_valid("secret-two")
        assert not by_text["two"].signature_valid("secret-one")


SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("text", {"type": "text", "text": "hello"}, "text"),
    ("image", {"type": "image", "caption": "damaged box"}, "image"),
    ("video", {"type": "video"}, "video"),
    ("audio", {"type": "audio"}, "audio"),
    ("voice", {"type": "voice"}, "audio"),
    ("document", {"type": "document", "filename": "invoice.pdf"}, "document"),
    ("sticker", {"type": "sticker", "animated": True}, "sticker"),
    (
        "location",
        {
            "type": "location",
            "latitude": 38.72,
            "longitude": -9.14,
            "name": "Shop",
            "address": "Rua Augusta 1",
        },
        "location",
    ),
    ("contacts", {"type": "contacts"}, "contacts"),
    (
        "button_reply",
        {"type": "interactive", "reply_type": "button_reply", "id": "yes", "title": "Yes"},
        "interactive",
    ),
    (
        "list_reply",
        {
            "type": "interactive",
            "reply_type": "list_reply",
            "id": "r1",
            "title": "Blue",
            "description": "The blue one",
        },
        "interactive",
    ),
    (
        "nfm_reply",
        {"type": "interactive", "reply_type": "nfm_reply", "response": {"size": "M"}},
        "interactive",
    ),
    ("button", {"type": "button", "text": "Talk to us", "payload": "TALK"}, "button"),
    ("order", {"type": "order", "text": "for Friday"}, "order"),
    ("unsupported", {"type": "unsupported"}, "unsupported"),
    (
        "system: changed number",
        {"type": "system", "system_type": "user_changed_number", "new_wa_id": "16505550999"},
        "system",
    ),
    ("system: identity", {"type": "system", "system_type": "customer_identity_changed"}, "system"),
    ("system: user id", {"type": "system", "system_type": "user_changed_user_id"}, "system"),
    ("unknown type", {"type": "hologram", "hologram": {"shape": "cube"}}, "unsupported"),
]


@pytest.mark.parametrize(("case", "spec", "stored_as"), SPECS, ids=[s[0] for s in SPECS])
async def test_every_inbound_type_reads_back_with_the_platforms_parser(
    sim: Sim, case: str, spec: dict[str, Any], stored_as: str
) -> None:
    said = await sim.customer_says(ANA, spec)
    [hook] = await sim.receiver.wait_for(1)
    assert hook.signature_valid()
    [change] = hook.changes()
    parsed, skipped = inbound.messages(change["value"])
    assert skipped == 0
    [message] = parsed
    assert message.wamid == said["wamid"]
    assert message.type == stored_as
    assert message.sender.phone == "+" + ANA
    raw = hook.messages()[0]
    if stored_as in inbound.MEDIA_TYPES:
        media = raw[stored_as]
        assert message.content.media_id == media["id"]
        assert {"id", "mime_type", "sha256", "url"} <= set(media)
        if case == "voice":
            assert media["voice"] is True
    if case == "location":
        assert message.content.details["location"]["latitude"] == 38.72
    if case == "nfm_reply":
        assert message.content.details["interactive"]["response"] == {"size": "M"}
    if case == "list_reply":
        assert message.content.details["interactive"]["description"] == "The blue one"
    if case.startswith("system"):
        assert "contacts" not in change["value"]
        assert raw["system"]["type"] == spec["system_type"]
    if case == "system: changed number":
        assert raw["system"]["wa_id"] == "16505550999"
        # the customer now writes from the new number
        await sim.customer_says("16505550999", {"type": "text", "text": "new phone"})
        hooks = await sim.receiver.wait_for(2)
        assert hooks[1].messages()[0]["from"] == "16505550999"
    if case == "unsupported":
        assert raw["errors"][0]["code"] == 131051


async def test_reactions_edits_and_revokes_point_at_the_original(sim: Sim) -> None:
    first = await sim.customer_says(ANA, {"type": "text", "text": "helo"})
    await sim.customer_says(
        ANA, {"type": "edit", "original_message_id": first["wamid"], "text": "hello"}
    )
    await sim.customer_says(ANA, {"type": "reaction", "message_id": first["wamid"], "emoji": "❤️"})
    await sim.customer_says(ANA, {"type": "reaction", "message_id": first["wamid"], "emoji": ""})
    await sim.customer_says(ANA, {"type": "revoke", "original_message_id": first["wamid"]})
    await sim.receiver.wait_for(5)
    await sim.settle()
    by_type = {}
    for hook in sim.receiver.received:
        value = hook.changes()[0]["value"]
        [m] = inbound.messages(value)[0]
        by_type.setdefault(m.type, []).append(m)
    assert by_type["edit"][0].target_wamid == first["wamid"]
    assert by_type["edit"][0].content.body == "hello"
    assert [r.reaction for r in by_type["reaction"]] == ["❤️", None]
    assert all(r.target_wamid == first["wamid"] for r in by_type["reaction"])
    assert by_type["revoke"][0].target_wamid == first["wamid"]


async def test_context_forwarded_and_referral_variants(sim: Sim) -> None:
    await sim.customer_says(ANA)
    r = await sim.text(ANA, "We have it in blue")
    business_wamid = r.json()["messages"][0]["id"]
    await sim.customer_says(ANA, {"type": "text", "text": "great", "reply_to": business_wamid})
    await sim.customer_says(ANA, {"type": "image", "forwarded": True})
    await sim.customer_says(ANA, {"type": "text", "text": "fw", "frequently_forwarded": True})
    await sim.customer_says(ANA, {"type": "text", "text": "ad", "referral": True})
    await sim.customer_says(ANA, {"type": "text", "text": "this", "referred_product": True})
    await sim.settle()
    messages = {
        m["text"]["body"] if m["type"] == "text" else m["type"]: m
        for m in sim.receiver.all_messages()
    }
    reply = messages["great"]["context"]
    assert reply == {"from": "15550100001", "id": business_wamid}
    assert messages["image"]["context"] == {"forwarded": True}
    assert messages["fw"]["context"] == {"forwarded": True, "frequently_forwarded": True}
    assert {"source_url", "source_id", "source_type", "ctwa_clid"} <= set(
        messages["ad"]["referral"]
    )
    assert messages["this"]["context"]["referred_product"]["product_retailer_id"]
    [parsed] = inbound.messages({"messages": [messages["great"]]})[0]
    assert parsed.reply_to_wamid == business_wamid


async def test_users_who_hide_their_phone() -> None:
    customers = [
        {
            "user_id": CARLA_BSUID,
            "name": "Carla",
            "username": "@carla",
            "wa_id": "5511955550199",
            "hide_phone": True,
        },
        {
            "user_id": "US.55555555555555555555",
            "name": "Quiet",
            "hide_phone": True,
            "hidden_as": "missing",
        },
    ]
    async with running({"customers": customers}) as sim:
        await sim.customer_says(CARLA_BSUID)
        await sim.customer_says("US.55555555555555555555")
        a, b = (h.changes()[0]["value"] for h in await sim.receiver.wait_for(2))
        assert a["contacts"] == [
            {
                "profile": {"name": "Carla", "username": "@carla"},
                "wa_id": "",
                "user_id": CARLA_BSUID,
            }
        ]
        assert a["messages"][0]["from"] == "" and a["messages"][0]["from_user_id"] == CARLA_BSUID
        assert "wa_id" not in b["contacts"][0] and "from" not in b["messages"][0]
        for value in (a, b):
            [m] = inbound.messages(value)[0]
            assert m.sender.phone is None and m.sender.bsuid
        # the business answers by user id; the status names the user id, no phone
        r = await sim.send({"recipient": CARLA_BSUID, "type": "text", "text": {"body": "Oi"}})
        assert r.status_code == 200, r.text
        await sim.settle()
        status = sim.receiver.all_statuses()[0]
        assert status["recipient_id"] == "" and status["recipient_user_id"] == CARLA_BSUID


async def test_customers_created_on_the_fly(sim: Sim) -> None:
    await sim.customer_says("+351912345678", {"type": "text", "text": "olá"})
    [hook] = await sim.receiver.wait_for(1)
    contact = hook.changes()[0]["value"]["contacts"][0]
    assert contact["wa_id"] == "351912345678"
    assert contact["user_id"].startswith("PT.")
    r = await sim.client.post(
        "/_sim/customers/not a number/messages", json={"type": "text", "text": "x"}
    )
    assert r.status_code == 422


async def test_status_callbacks_sent_delivered_read_with_pricing() -> None:
    async with running({"statuses": {"delay_ms": 20}}) as sim:
        await sim.customer_says(ANA)
        r = await sim.send(
            {
                "to": ANA,
                "type": "text",
                "text": {"body": "on its way"},
                "biz_opaque_callback_data": "ticket-9",
            }
        )
        wamid = r.json()["messages"][0]["id"]
        r = await sim.send(
            {
                "to": BEN,
                "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}},
            }
        )
        template_wamid = r.json()["messages"][0]["id"]
        await sim.settle()
        statuses = [s for s in sim.receiver.all_statuses() if s["id"] == wamid]
        assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
        for s in statuses:
            assert s["recipient_id"] == ANA
            assert s["biz_opaque_callback_data"] == "ticket-9"
            assert s["pricing"] == {
                "billable": False,
                "pricing_model": "PMP",
                "category": "service",
                "type": "free_customer_service",
            }
            assert "conversation" not in s  # gone since v24.0
        assert [int(s["timestamp"]) for s in statuses] == sorted(
            int(s["timestamp"]) for s in statuses
        )
        template_statuses = [s for s in sim.receiver.all_statuses() if s["id"] == template_wamid]
        assert template_statuses[0]["pricing"] == {
            "billable": True,
            "pricing_model": "PMP",
            "category": "utility",
            "type": "regular",
        }
        # the platform's parser reads them
        for hook in sim.receiver.received:
            for value in (c["value"] for c in hook.changes()):
                from connectx.integrations.whatsapp.schemas import statuses as read_statuses

                for st in read_statuses(value):
                    assert st.status in ("sent", "delivered", "read")
        sent = (await sim.client.get("/_sim/sent")).json()["data"]
        assert sent[0]["statuses"] == ["sent", "delivered", "read"]


async def test_older_versions_carry_the_conversation_object() -> None:
    async with running(
        {"graph_version": "v23.0", "statuses": {"delay_ms": 0, "progress": "sent"}}
    ) as sim:
        await sim.customer_says(ANA)
        r = await sim.client.post(
            "/v23.0/100000000000001/messages",
            json={"messaging_product": "whatsapp", "to": ANA, "text": {"body": "x"}},
            headers={"Authorization": "Bearer sim-access-token-0001"},
        )
        assert r.status_code == 200
        await sim.settle()
        [status] = sim.receiver.all_statuses()
        assert status["conversation"]["origin"] == {"type": "service"}


async def test_out_of_order_and_duplicated_statuses() -> None:
    async with running({"statuses": {"delay_ms": 10, "shuffle": 1.0, "duplicate": 1.0}}) as sim:
        await sim.customer_says(ANA)
        await sim.text(ANA)
        await sim.settle()
        order = [s["status"] for s in sim.receiver.all_statuses()]
        assert order[0] == "read"  # read first, sent last
        assert sorted(order) == sorted(["sent", "delivered", "read"] * 2)


async def test_undeliverable_and_stopped_marketing_fail_by_webhook() -> None:
    customers = [
        {"wa_id": "16505550111", "name": "Gone", "undeliverable": True},
        {"wa_id": ANA, "name": "Ana"},
    ]
    async with running({"customers": customers, "statuses": {"delay_ms": 0}}) as sim:
        await sim.customer_says("16505550111")
        assert (await sim.text("16505550111")).status_code == 200
        r = await sim.client.post(f"/_sim/customers/{ANA}/preferences", json={"value": "stop"})
        assert r.status_code == 200
        marketing = {
            "to": ANA,
            "type": "template",
            "template": {
                "name": "winter_sale",
                "language": {"code": "en_US"},
                "components": [
                    {
                        "type": "header",
                        "parameters": [
                            {"type": "image", "image": {"link": "https://example.com/a.jpg"}}
                        ],
                    },
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                            {"type": "text", "parameter_name": "discount", "text": "20%"},
                        ],
                    },
                ],
            },
        }
        assert (await sim.send(marketing)).status_code == 200
        await sim.settle()
        prefs = [
            c["value"]
            for h in sim.receiver.received
            for c in h.changes()
            if c["field"] == "user_preferences"
        ]
        assert prefs[0]["user_preferences"][0]["value"] == "stop"
        failed = [s for s in sim.receiver.all_statuses() if s["status"] == "failed"]
        assert sorted(s["errors"][0]["code"] for s in failed) == [131026, 131050]
        assert all("pricing" not in s for s in failed)


async def test_status_on_demand(sim: Sim) -> None:
    await sim.customer_says(ANA)
    wamid = (await sim.text(ANA)).json()["messages"][0]["id"]
    await sim.settle()
    before = len(sim.receiver.all_statuses())
    r = await sim.client.post(
        "/_sim/statuses",
        json={"wamid": wamid, "status": "failed", "code": 131049, "title": "Not delivered"},
    )
    assert r.status_code == 202
    await sim.settle()
    last = sim.receiver.all_statuses()[before]
    assert last["status"] == "failed" and last["errors"][0]["code"] == 131049
    r = await sim.client.post("/_sim/statuses", json={"wamid": "wamid.nope", "status": "read"})
    assert r.status_code == 404


async def test_batching_many_updates_in_one_post() -> None:
    second = {
        "phone_number_id": "100000000000002",
        "display_phone_number": "+15550100002",
        "waba_id": "200000000000002",
        "access_token": "t2",
    }
    async with running(
        {"batching": {"max_updates": 50, "window_ms": 300}, "numbers": [{}, second]}
    ) as sim:
        for i in range(6):
            await sim.customer_says(ANA if i % 2 else BEN, {"type": "text", "text": f"m{i}"})
        await sim.customer_says(
            ANA, {"type": "text", "text": "other number", "phone_number_id": "100000000000002"}
        )
        [hook] = await sim.receiver.wait_for(1)
        await sim.settle()
        assert len(sim.receiver.received) == 1
        assert hook.signature_valid()
        entries = hook.json["entry"]
        assert sorted(e["id"] for e in entries) == ["200000000000001", "200000000000002"]
        first = next(e for e in entries if e["id"] == WABA)
        [change] = first["changes"]  # one number: one value, messages side by side
        assert [m["text"]["body"] for m in change["value"]["messages"]] == [
            f"m{i}" for i in range(6)
        ]
        assert len(change["value"]["contacts"]) == 2  # each person once
        parsed, _ = inbound.messages(change["value"])
        assert {m.sender.phone for m in parsed} == {"+" + ANA, "+" + BEN}


async def test_duplicate_delivery_of_a_message(sim: Sim) -> None:
    said = await sim.customer_says(ANA, {"type": "text", "text": "twice", "duplicate": True})
    hooks = await sim.receiver.wait_for(2)
    assert [h.messages()[0]["id"] for h in hooks] == [said["wamid"]] * 2


async def test_non_200_is_retried_with_the_same_bytes() -> None:
    async with running({"webhooks": {"retry_base_s": 0.05, "retry_max_s": 0.1}}) as sim:
        sim.receiver.answers = [500, 503]
        await sim.customer_says(ANA)
        hooks = await sim.receiver.wait_for(3)
        await sim.settle()
        assert len(hooks) == 3
        assert hooks[0].body == hooks[1].body == hooks[2].body
        assert hooks[0].headers["X-Hub-Signature-256"] == hooks[2].headers["X-Hub-Signature-256"]
        [delivery] = (await sim.client.get("/_sim/webhooks")).json()["data"]
        assert delivery["attempts"] == 3 and delivery["state"] == "delivered"


async def test_gives_up_after_the_retry_period() -> None:
    async with running(
        {"webhooks": {"retry_base_s": 0.05, "retry_max_s": 0.05, "retry_for_s": 0.2}}
    ) as sim:
        sim.receiver.answers = [500] * 100
        await sim.customer_says(ANA)
        await sim.settle()
        [delivery] = (await sim.client.get("/_sim/webhooks")).json()["data"]
        assert delivery["state"] == "dropped" and delivery["attempts"] >= 2


async def test_raw_payloads_and_bad_signatures_on_demand(sim: Sim) -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    import base64

    r = await sim.client.post(
        "/_sim/webhooks",
        json={"body_b64": base64.b64encode(body).decode(), "signature": "sha256=" + "0" * 64},
    )
    assert r.status_code == 202
    r = await sim.client.post("/_sim/webhooks", json={"payload": {"object": "x", "entry": []}})
    assert r.status_code == 202
    hooks = await sim.receiver.wait_for(2)
    by_body = {h.body: h for h in hooks}
    assert not by_body[body].signature_valid()
    assert by_body[b'{"object":"x","entry":[]}'].signature_valid()


async def test_verification_handshake(sim: Sim) -> None:
    r = await sim.client.post("/_sim/verify", json={})
    assert r.json()["ok"] is True
    sim.receiver.verify_token = "something-else"
    r = await sim.client.post("/_sim/verify", json={})
    assert r.json() == {"ok": False, "status": 403, "url": sim.receiver.url}


async def test_pricing_and_played_cases() -> None:
    async with running({"statuses": {"delay_ms": 0}}) as sim:
        await sim.customer_says(ANA, {"type": "text", "text": "saw your ad", "referral": True})
        await sim.customer_says(BEN)
        voice = await sim.send(
            {"to": BEN, "type": "audio", "audio": {"link": "https://example.com/v.ogg"}}
        )
        utility = await sim.send(
            {
                "to": BEN,
                "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}},
            }
        )
        ad = await sim.text(ANA)
        await sim.settle()
        by_id: dict[str, list[dict[str, Any]]] = {}
        for s in sim.receiver.all_statuses():
            by_id.setdefault(s["id"], []).append(s)
        voice_statuses = by_id[voice.json()["messages"][0]["id"]]
        assert [s["status"] for s in voice_statuses] == ["sent", "delivered", "read", "played"]
        [u] = {json.dumps(s["pricing"]) for s in by_id[utility.json()["messages"][0]["id"]]}
        assert json.loads(u) == {
            "billable": False,
            "pricing_model": "PMP",
            "category": "utility",
            "type": "free_customer_service",
        }
        assert by_id[ad.json()["messages"][0]["id"]][0]["pricing"]["type"] == "free_entry_point"


async def test_numbers_added_at_runtime_and_reset(sim: Sim) -> None:
    r = await sim.client.post(
        "/_sim/numbers",
        json={
            "phone_number_id": "100000000000009",
            "display_phone_number": "+15550100009",
            "waba_id": "200000000000009",
            "access_token": "t9",
            "throughput": 1000,
        },
    )
    assert r.status_code == 201
    await sim.customer_says(
        ANA, {"type": "text", "text": "hi 9", "phone_number_id": "100000000000009"}
    )
    [hook] = await sim.receiver.wait_for(1)
    assert hook.json["entry"][0]["id"] == "200000000000009"
    assert (await sim.text(ANA, pnid="100000000000009", token="t9")).status_code == 200
    r = await sim.client.post("/_sim/reset")
    assert r.status_code == 200
    assert (await sim.client.get("/_sim/sent")).json()["total"] == 0
    # the conversation is forgotten: the window is closed again
    r = await sim.text(ANA, pnid="100000000000009", token="t9")
    assert r.status_code == 400 and r.json()["error"]["code"] == 131047


async def test_bad_input_to_the_control_api_is_4xx(sim: Sim) -> None:
    for method, url, body in [
        ("GET", "/_sim/sent?after_seq=x", None),
        ("GET", "/_sim/webhooks?after_id=x", None),
        ("POST", "/_sim/webhooks", {"body_b64": "%%%"}),
        ("POST", "/_sim/settle", {"timeout_s": "soon"}),
        ("POST", "/_sim/clock", {"advance_s": "later"}),
        ("POST", "/_sim/faults", {"code": "x"}),
        ("POST", "/_sim/faults", {}),
        ("POST", "/_sim/customers", {"name": "nobody"}),
        ("POST", "/_sim/customers/16505550101/messages", {"type": "text"}),
        ("POST", "/_sim/customers/16505550101/messages", {"type": "reaction"}),
        ("POST", "/_sim/customers/16505550101/preferences", {"value": "maybe"}),
        ("POST", "/_sim/statuses", {"wamid": "wamid.x", "status": "read"}),
        ("PATCH", "/_sim/numbers/100000000000001", {"throughput": 5000}),
    ]:
        r = await sim.client.request(method, url, json=body)
        assert 400 <= r.status_code < 500, (url, body, r.status_code, r.text)
