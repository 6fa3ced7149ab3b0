"""Meta's error 131050 ("the user stopped marketing messages") on a send is a withdrawal: it is
recorded in the consent ledger (issue 6, withdrawal as easy as giving), so the send gate then
refuses marketing templates to that person."""

from __future__ import annotations

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.conversation import Conversation
from connectx.privacy import consent
from tests.outbound.conftest import World

ANA = "16505550101"
ANA_E164 = "+16505550101"


async def test_error_131050_records_a_withdrawal_and_marketing_is_refused(world: World) -> None:
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    async with unit_of_work() as db:
        contact_id, ws = (
            await db.execute(
                select(Conversation.contact_id, Conversation.workspace_id).where(
                    Conversation.id == conv
                )
            )
        ).one()
        await consent.record(
            db,
            subject=f"contact:{contact_id}",
            workspace_id=ws,
            purpose="marketing",
            channel="whatsapp",
            granted=True,
            source="agent",
            wording="Agreed on the phone to offers on WhatsApp",
            notice_version="2025-08-02",
            actor="system",
        )
    await world.sim.post("/_sim/faults", json={"code": 131050, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "an offer"}
    )
    assert r.status_code == 202, r.text
    m = await world.until(conv, r.json()["id"], "failed", timeout=60)
    assert m["error"]["code"] == 131050
    async with unit_of_work() as db:
        state = await consent.current_state(db, f"contact:{contact_id}", "marketing", "whatsapp")
    assert not state.granted
    assert state.source == "whatsapp_error_131050"
    r = await world.owner.post(f"/api/v1/channels/{world.channel['id']}/templates/sync")
    assert r.status_code == 200, r.text
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages",
        json={
            "type": "template",
            "template": {"name": "winter_sale", "body": {"first_name": "Ana", "discount": "10%"}},
        },
    )
    assert r.status_code == 422, r.text
    assert "marketing" in r.text
