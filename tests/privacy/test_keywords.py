"""Withdrawal as easy as giving (policy §8): WhatsApp STOP / START keywords per workspace and
language, confirmed to the customer through the outbox; the send gate follows the ledger; an
opt-out outlives the contact (suppression list). Against the real simulator over HTTP."""

from __future__ import annotations

import base64
from typing import Any

from connectx.backups.erasure import delete_subject_rows
from connectx.db.session import unit_of_work
from connectx.privacy import consent
from connectx.privacy.vault import Vault
from tests.outbound.conftest import World
from tests.workspaces.helpers import Caller

ANA = "16505550101"
ANA_E164 = "+16505550101"
SAM = "971501234567"  # a valid number: sends by "to" check it
SAM_E164 = "+971501234567"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 64).decode()
WINTER_SALE = {
    "type": "template",
    "template": {
        "name": "winter_sale",
        "body": {"first_name": "Ana", "discount": "10%"},
        "header_media": {"data_b64": PNG, "mime_type": "image/png"},
    },
}
ARABIC = {
    "language": "ar",
    "stop": ["توقف", "إلغاء"],
    "start": ["ابدأ"],
    "stop_reply": "لن تصلك رسائل تسويقية بعد الآن. أرسل ابدأ لإعادتها.",
    "start_reply": "ستصلك رسائلنا التسويقية مجدداً. أرسل توقف لإيقافها.",
}


async def put(caller: Caller, url: str, body: Any) -> Any:
    return await caller.client.put(url, json=body, headers=caller.h)


async def contact_of(world: World, phone: str) -> int:
    r = await world.owner.get("/api/v1/contacts", params={"phone": phone})
    [item] = r.json()["items"]
    return int(item["id"])


async def ledger(world: World, contact_id: int) -> list[dict[str, Any]]:
    r = await world.owner.get(f"/api/v1/contacts/{contact_id}/consent")
    assert r.status_code == 200, r.text
    return list(r.json()["history"])


async def marketing(world: World, conv: int) -> int:
    r = await world.owner.post(f"/api/v1/conversations/{conv}/messages", json=WINTER_SALE)
    assert r.status_code == 202 or "marketing" in r.json()["detail"], r.text
    return r.status_code


async def texts_sent(world: World, n: int) -> list[str]:
    sent = await world.sent(n, kind="message")
    return [s["body"]["text"]["body"] for s in sent if s["body"].get("type") == "text"]


async def test_stop_blocks_marketing_and_start_allows_it_again(world: World) -> None:
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    contact = await contact_of(world, ANA_E164)
    r = await world.owner.post(f"/api/v1/channels/{world.channel['id']}/templates/sync")
    assert r.status_code == 200, r.text
    assert await marketing(world, conv) == 422  # never asked: no consent

    # the customer agreed on the phone; the agent records it with the words agreed to
    r = await world.owner.post(
        f"/api/v1/contacts/{contact}/consent",
        json={"purpose": "marketing", "channel": "whatsapp", "granted": True},
    )
    assert r.status_code == 422 and "wording" in r.json()["detail"]
    r = await world.owner.post(
        f"/api/v1/contacts/{contact}/consent",
        json={
            "purpose": "marketing",
            "channel": "whatsapp",
            "granted": True,
            "wording": "Yes, send me your offers on WhatsApp.",
        },
    )
    assert r.status_code == 201 and r.json()["granted"] and r.json()["source"] == "agent"
    assert await marketing(world, conv) == 202

    await world.customer_says(ANA, "  Stop! ")
    assert await marketing(world, conv) == 422
    history = await ledger(world, contact)
    assert [(h["granted"], h["source"]) for h in history] == [
        (True, "agent"),
        (False, "whatsapp_keyword"),
    ]
    assert history[0]["actor"] == f"user:{world.owner.user.id}"
    assert history[1]["actor"] == f"contact:{contact}" and '"STOP"' in history[1]["wording"]
    texts = await texts_sent(world, 2)
    assert texts == [
        "You will no longer receive marketing messages from us. Reply START to receive them again."
    ]

    await world.customer_says(ANA, "please stop sending me these")  # not a keyword
    await world.customer_says(ANA, "start")
    assert [h["granted"] for h in await ledger(world, contact)] == [True, False, True]
    assert await marketing(world, conv) == 202
    texts = await texts_sent(world, 4)
    assert texts[-1].startswith("You will receive marketing messages from us again.")

    # a repeated START changes nothing in the ledger but is still answered
    await world.customer_says(ANA, "START")
    assert len(await ledger(world, contact)) == 3
    assert len(await texts_sent(world, 5)) == 3


async def test_keywords_per_language_with_their_confirmation(world: World) -> None:
    owner = world.owner
    url = "/api/v1/workspace/consent/keywords"
    r = await owner.get(url)
    assert r.json()["languages"][0]["stop"] == ["STOP"] and r.json()["languages"][0]["default"]
    r = await put(owner, url, {"languages": [ARABIC]})
    assert r.status_code == 200, r.text
    assert [(k["language"], k["default"]) for k in r.json()["languages"]] == [
        ("en", True),
        ("ar", False),
    ]

    await world.customer_says(ANA, "مرحبا")
    contact = await contact_of(world, ANA_E164)
    await world.customer_says(ANA, "ابدأ")
    await world.customer_says(ANA, "توقّف")  # with a shadda: diacritics do not matter
    history = await ledger(world, contact)
    assert [(h["granted"], h["source"]) for h in history] == [
        (True, "whatsapp_keyword"),
        (False, "whatsapp_keyword"),
    ]
    assert history[1]["wording"].startswith('The customer sent the keyword "توقف" (ar)')
    assert await texts_sent(world, 2) == [ARABIC["start_reply"], ARABIC["stop_reply"]]

    # English still works beside Arabic, and can be replaced by the workspace's own words
    english = {
        "language": "en",
        "stop": ["STOP", "UNSUBSCRIBE"],
        "start": ["SUBSCRIBE"],
        "stop_reply": "Done: no more offers. Reply SUBSCRIBE to get them again.",
        "start_reply": "Welcome back: offers are on.",
    }
    r = await put(owner, url, {"languages": [english, ARABIC]})
    assert r.status_code == 200 and not r.json()["languages"][0]["default"]
    await world.customer_says(ANA, "subscribe")
    await world.customer_says(ANA, "START")  # no longer a keyword here
    assert [h["granted"] for h in await ledger(world, contact)] == [True, False, True]
    assert (await texts_sent(world, 3))[-1] == "Welcome back: offers are on."


async def test_keyword_settings_refuse_what_cannot_work(world: World) -> None:
    owner = world.owner
    url = "/api/v1/workspace/consent/keywords"
    base = {"language": "fr", "stop": ["ARRET"], "start": ["DEBUT"], "stop_reply": "ok"}
    cases = [
        ({**base, "start_reply": "ok", "stop": []}, "opt out"),
        ({**base, "start_reply": "ok", "language": "French"}, "language"),
        ({**base, "start_reply": ""}, "start_reply"),
        ({**base, "start_reply": "ok", "start": ["STOP"]}, "must mean one thing"),
        ({**base, "start_reply": "ok", "stop": ["!!!"]}, "letter or digit"),
        ({**base, "start_reply": "ok", "stop": ["x" * 41]}, "1 to 40"),
    ]
    for body, words in cases:
        r = await put(owner, url, {"languages": [body]})
        assert r.status_code == 422 and words in r.json()["detail"], (body, r.text)
    r = await put(owner, url, {"languages": [{**base, "start_reply": "ok"}] * 2})
    assert r.status_code == 422 and "once" in r.json()["detail"]
    r = await put(owner, url, {"languages": "en"})
    assert r.status_code == 422
    assert (await owner.get(url)).json()["languages"][0]["default"]  # nothing was saved


async def test_an_opt_out_outlives_the_contact(world: World) -> None:
    """STOP, then the contact is erased (key destroyed, rows deleted): when the same number
    writes again, or the API sends to it, the new contact starts opted out."""
    await world.customer_says(SAM, "hello")
    old = await contact_of(world, SAM_E164)
    r = await world.owner.post(f"/api/v1/channels/{world.channel['id']}/templates/sync")
    assert r.status_code == 200
    await world.customer_says(SAM, "STOP")
    # Someone else writes too, so the erased contact's id is not the newest (SQLite reuses the
    # newest rowid after a delete: see the session report).
    await world.customer_says("16505550199", "hi")
    async with unit_of_work() as db:
        state = await consent.current_state(db, f"contact:{old}", "marketing", "whatsapp")
        assert state.decided and not state.granted
        ws = int((await db.execute(_contact_ws(old))).scalar_one())
        await Vault(db).destroy_subject(ws, f"contact:{old}", actor="system")
        assert await delete_subject_rows(db, ws, f"contact:{old}") >= 1

    await world.customer_says(SAM, "hello again")  # a new contact for the same number
    new = await contact_of(world, SAM_E164)
    assert new != old
    history = await ledger(world, new)
    assert [(h["granted"], h["source"], h["actor"]) for h in history] == [
        (False, "suppression_list", "system")
    ]
    conv = await world.conversation_of(SAM_E164)
    assert await marketing(world, conv) == 422

    # erased again, then re-created by the API (a send to the number): still suppressed
    await world.customer_says("16505550198", "hi")
    async with unit_of_work() as db:
        await Vault(db).destroy_subject(ws, f"contact:{new}", actor="system")
        await delete_subject_rows(db, ws, f"contact:{new}")
    r = await world.owner.post(
        "/api/v1/messages", json={**WINTER_SALE, "channel_id": world.channel["id"], "to": SAM_E164}
    )
    assert r.status_code == 422 and "marketing" in r.json()["detail"]
    # the refused send rolled back; a send that is not marketing creates the contact
    r = await world.owner.post(
        "/api/v1/messages",
        json={
            "type": "template",
            "template": {
                "name": "order_update",
                "body": ["Sam", "A-1"],
                "buttons": [{"index": 0, "parameter": "A-1"}],
            },
            "channel_id": world.channel["id"],
            "to": SAM_E164,
        },
    )
    assert r.status_code == 202, r.text
    third = await contact_of(world, SAM_E164)
    assert third not in (old, new)
    assert [h["source"] for h in await ledger(world, third)] == ["suppression_list"]

    # opting in again lifts the suppression for the contacts that come after
    await world.customer_says(SAM, "START")
    await world.customer_says("16505550197", "hi")
    async with unit_of_work() as db:
        await Vault(db).destroy_subject(ws, f"contact:{third}", actor="system")
        await delete_subject_rows(db, ws, f"contact:{third}")
    await world.customer_says(SAM, "hi")
    fourth = await contact_of(world, SAM_E164)
    assert await ledger(world, fourth) == []


def _contact_ws(contact_id: int) -> Any:
    from sqlalchemy import select

    from connectx.models.contact import Contact

    return select(Contact.workspace_id).where(Contact.id == contact_id)
