"""Restriction: kept but not processed. A send to the subject is refused through the real send
API, the contact API carries the flag agents see as a banner, queued sends are cancelled, and
lifting it lets processing resume."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from connectx.privacy.rights import Outcome, Right, execute
from connectx.privacy.rights.restriction import is_restricted, restricted_among
from tests.privacy import rights_world as w


async def _send(world: w.World, text: str) -> Any:
    return await world.owner_a.post(
        f"/api/v1/conversations/{world.conversation}/messages", json={"type": "text", "text": text}
    )


async def test_restriction_blocks_a_send_until_lifted(rights_world: w.World) -> None:
    world = rights_world
    zara = world.contacts["zara"]
    async with unit_of_work() as db:
        result = await execute(db, Right.RESTRICTION, world.subject, actor="user:1", request_id=5)
    assert result.outcome is Outcome.DONE
    async with unit_of_work() as db:
        assert await is_restricted(db, zara)
        assert await restricted_among(db, list(world.contacts.values())) == {zara}

    r = await world.owner_a.get(f"/api/v1/contacts/{zara}")
    assert r.json()["restricted"] is True
    listed = (await world.owner_a.get("/api/v1/contacts")).json()["items"]
    assert {c["id"]: c["restricted"] for c in listed} == {
        zara: True,
        world.contacts["omar"]: False,
    }

    refused = await _send(world, "A new offer for you")
    assert refused.status_code == 409, refused.text
    assert "restricted" in refused.json()["detail"]
    assert refused.headers["content-type"].startswith("application/problem+json")
    omar_conv = next(
        c["id"]
        for c in (await world.owner_a.get("/api/v1/conversations")).json()["items"]
        if c["contact"]["id"] == world.contacts["omar"]
    )
    other = await world.owner_a.post(
        f"/api/v1/conversations/{omar_conv}/messages", json={"type": "text", "text": "hello"}
    )
    assert other.status_code == 202, other.text  # everybody else is served as before

    async with unit_of_work() as db:  # restricting twice changes nothing
        again = await execute(db, Right.RESTRICTION, world.subject)
    assert again.outcome is Outcome.NOTHING

    async with unit_of_work() as db:
        lifted = await execute(db, Right.RESTRICTION, world.subject, {"lift": True})
    assert lifted.outcome is Outcome.DONE
    assert (await _send(world, "Your order shipped")).status_code == 202
    r = await world.owner_a.get(f"/api/v1/contacts/{zara}")
    assert r.json()["restricted"] is False
    async with unit_of_work() as db:
        actions = (
            await db.execute(
                select(AuditEvent.action).where(AuditEvent.subject == world.subject.ref)
            )
        ).scalars()
        assert {"privacy.restriction_placed", "privacy.restriction_lifted"} <= set(actions)


async def test_queued_sends_are_cancelled_when_processing_is_restricted(
    rights_world: w.World,
) -> None:
    from connectx.models.outbox import OutboxMessage
    from connectx.outbound import pacer
    from tests.whatsapp.support import rows

    world = rights_world

    pacer.stop_embedded()  # keep the sends queued: nobody takes them
    try:
        assert (await _send(world, "queued one")).status_code == 202
        async with unit_of_work() as db:
            result = await execute(db, Right.RESTRICTION, world.subject)
    finally:
        pacer.start_embedded()
    assert result.counts["cancelled_sends"] >= 1
    pending = await rows(
        OutboxMessage,
        OutboxMessage.contact_id == world.contacts["zara"],
        OutboxMessage.status == "pending",
    )
    assert pending == []
