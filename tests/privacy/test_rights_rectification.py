"""Rectification: the corrected value replaces the old one everywhere it lives (sealed value,
keyed hash for lookups, sends still queued; an account's e-mail must be confirmed again)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from connectx.accounts import service as accounts
from connectx.db.session import unit_of_work
from connectx.kit.errors import Conflict, InvalidInput
from connectx.models.outbox import OutboxMessage
from connectx.privacy.rights import Outcome, Right, Subject, execute
from connectx.privacy.vault import Vault
from tests.privacy import rights_world as w
from tests.support.mail import outbox
from tests.whatsapp.support import rows

NEW_PHONE = "+971509998877"


async def test_a_contacts_name_and_phone_are_corrected_everywhere(
    rights_world: w.World,
) -> None:
    from connectx.outbound import pacer

    world = rights_world
    zara = world.contacts["zara"]
    pacer.stop_embedded()  # a send waits in the outbox while the number is corrected
    try:
        r = await world.owner_a.post(
            f"/api/v1/conversations/{world.conversation}/messages",
            json={"type": "text", "text": "about your order"},
        )
        assert r.status_code == 202, r.text
        async with unit_of_work() as db:
            result = await execute(
                db,
                Right.RECTIFICATION,
                world.subject,
                {"name": "Zara Quenby", "phone": "00971 50 999 8877"},
                actor="user:1",
            )
    finally:
        pacer.start_embedded()
    assert result.outcome is Outcome.DONE and result.counts["queued_sends_corrected"] >= 1
    view = (await world.owner_a.get(f"/api/v1/contacts/{zara}")).json()
    assert view["name"] == "Zara Quenby" and view["phone"] == NEW_PHONE
    found = (await world.owner_a.get("/api/v1/contacts", params={"phone": NEW_PHONE})).json()
    assert [c["id"] for c in found["items"]] == [zara]
    old = (await world.owner_a.get("/api/v1/contacts", params={"phone": w.ZARA.phone})).json()
    assert old["items"] == []
    for row in await rows(
        OutboxMessage, OutboxMessage.contact_id == zara, OutboxMessage.status == "pending"
    ):
        assert row.payload_enc is not None
        payload = await Vault().decrypt(
            world.ws_a, world.subject.ref, "outbox_messages.payload", row.payload_enc
        )
        assert json.loads(payload)["to"] == NEW_PHONE
    # The same person at business B is that business's to correct.
    other = (await world.owner_b.get(f"/api/v1/contacts/{world.contacts['zara_b']}")).json()
    assert other["phone"] == w.ZARA.phone and other["name"] == w.ZARA.name


async def test_corrections_that_cannot_apply_are_refused(rights_world: w.World) -> None:
    world = rights_world
    async with unit_of_work() as db:
        with pytest.raises(Conflict, match="Another contact"):
            await execute(db, Right.RECTIFICATION, world.subject, {"phone": w.OMAR.phone})
        with pytest.raises(InvalidInput, match="valid number"):
            await execute(db, Right.RECTIFICATION, world.subject, {"phone": "call me"})
        with pytest.raises(InvalidInput, match="what to correct"):
            await execute(db, Right.RECTIFICATION, world.subject, {})
        same = await execute(db, Right.RECTIFICATION, world.subject, {"name": w.ZARA.name})
    assert same.outcome is Outcome.NOTHING


async def test_an_account_holders_email_is_corrected_and_must_be_confirmed(
    app: Any, client: Any
) -> None:
    from tests.support.factories import make_user

    user = await make_user(email="old.address@example.com", name="Ada Lovelace")
    async with unit_of_work() as db:
        result = await execute(
            db,
            Right.RECTIFICATION,
            Subject.user(user.id),
            {"email": "New.Address@Example.com", "name": "Ada King"},
        )
    assert result.outcome is Outcome.DONE and result.notices
    async with unit_of_work() as db:
        assert await accounts.find_user_by_email(db, "old.address@example.com") is None
        found = await accounts.find_user_by_email(db, "new.address@example.com")
        assert found is not None and found.id == user.id
        profile = await accounts.profile(db, found)
    assert profile.name == "Ada King" and not profile.email_verified
    assert await outbox(to="new.address@example.com", kind="verify_email")
    r = await client.post(
        "/api/v1/auth/signin",
        json={"email": "new.address@example.com", "password": "quiet-harbour-lantern-47"},
    )
    assert r.status_code == 403 and "Confirm your e-mail" in r.text


async def test_attributes_and_the_name_are_corrected_everywhere_and_recipients_told(
    rights_world: w.World,
) -> None:
    from connectx.models.audit import AuditEvent
    from connectx.privacy.rights import notices

    world = rights_world
    zara = world.contacts["zara"]
    key, old_value = w.ATTRIBUTE
    async with unit_of_work() as db:
        await notices.set_endpoint(
            db, "hosting", webhook_url=None, secret=None, email="privacy@host.example"
        )
    async with unit_of_work() as db:
        with pytest.raises(InvalidInput, match="Attribute names"):  # nothing changes then
            await execute(
                db,
                Right.RECTIFICATION,
                world.subject,
                {"name": "Zara Q", "attributes": {"Bad Name": "x"}},
            )
    async with unit_of_work() as db:
        result = await execute(
            db,
            Right.RECTIFICATION,
            world.subject,
            {
                "name": "Zara Marchetti",
                "attributes": {key: "silver since 2021", "preferred_branch": "Marina"},
            },
            actor="user:1",
            request_id=21,
        )
    assert result.outcome is Outcome.DONE and result.recipients == ["hosting"]
    panel = (await world.owner_a.get(f"/api/v1/contacts/{zara}/panel")).json()
    assert panel["attributes"] == {key: "silver since 2021", "preferred_branch": "Marina"}
    assert panel["name"] == "Zara Marchetti"

    # The name search follows the corrected name: the new one finds her, the old one does not.
    async def found(q: str) -> list[int]:
        r = await world.owner_a.get("/api/v1/inbox/conversations", params={"q": q})
        assert r.status_code == 200, r.text
        return [c["contact"]["id"] for c in r.json()["items"] if c.get("contact")]

    assert zara in await found("marchetti")
    assert zara not in await found("quenby")

    # Removing one with null; the same values again change nothing.
    async with unit_of_work() as db:
        removed = await execute(
            db, Right.RECTIFICATION, world.subject, {"attributes": {"preferred_branch": None}}
        )
        same = await execute(
            db, Right.RECTIFICATION, world.subject, {"attributes": {key: "silver since 2021"}}
        )
    assert removed.outcome is Outcome.DONE and same.outcome is Outcome.NOTHING
    panel = (await world.owner_a.get(f"/api/v1/contacts/{zara}/panel")).json()
    assert panel["attributes"] == {key: "silver since 2021"}

    # Recipients (art. 19) get the corrected values; the audit trail names fields, not values.
    async def told() -> bool:
        mails = await outbox(to="privacy@host.example")
        return any("silver since 2021" in m.body and "user.profile.custom" in m.body for m in mails)

    async with asyncio.timeout(20):  # the notice goes out as a job
        while not await told():
            await asyncio.sleep(0.05)
    for event in await rows(AuditEvent, AuditEvent.subject == world.subject.ref):
        text = json.dumps(event.data or {})
        assert "silver" not in text and "Marina" not in text and "Marchetti" not in text
        assert old_value not in text
