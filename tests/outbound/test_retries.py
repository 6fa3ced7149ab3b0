"""Retry classes against faults the simulator injects."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from connectx.accounts.caller import Principal
from connectx.db.session import unit_of_work
from connectx.messages.service import subject_of
from connectx.models.conversation import Conversation
from connectx.models.outbox import OutboxMessage
from connectx.outbound import pacer
from connectx.outbound import service as outbound
from connectx.outbound.schemas import SendIn
from connectx.privacy.vault import Vault
from tests.outbound.conftest import World

ANA = "16505550101"


@pytest.mark.parametrize(
    ("code", "http_status", "kind"),
    [
        (130429, 400, "retry"),
        (None, 429, "retry"),  # a bare 429 (a proxy, no Meta body) was final: the message failed
        (1, 429, "retry"),
        (None, 503, "retry"),
        (131016, 0, "retry"),
        (131047, 400, "final"),
        (None, 400, "final"),
        (190, 401, "token"),
        (190, 429, "token"),
    ],
)
def test_error_classes(code: int | None, http_status: int, kind: str) -> None:
    assert pacer.classify(code, http_status) == kind


ANA_E164 = "+16505550101"


async def test_rate_limit_retried_window_error_final_token_pauses(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacer, "BACKOFF_BASE_S", 0.05)
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    await world.sim.post("/_sim/faults", json={"code": 130429, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "one"}
    )
    first = r.json()["id"]
    await world.until(conv, first, "read")  # retried after 130429, sent once
    await world.sim.post("/_sim/faults", json={"code": 131047, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "two"}
    )
    m = await world.until(conv, r.json()["id"], "failed")
    assert m["error"]["code"] == 131047
    await world.sim.post("/_sim/faults", json={"code": 190, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "three"}
    )
    third = r.json()["id"]
    async with asyncio.timeout(15):
        while True:
            s = (await world.owner.get(f"/api/v1/channels/{world.channel['id']}/sending")).json()
            if s["paused"]:
                break
            await asyncio.sleep(0.05)
    assert s["pause_code"] == 190
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "four"}
    )
    assert r.status_code == 409
    r = await world.owner.client.put(
        f"/api/v1/channels/{world.channel['id']}/sending",
        json={"resume": True},
        headers=world.owner.h,
    )
    assert r.status_code == 200 and r.json()["paused"] is False
    await world.until(conv, third, "read")  # kept, then sent after resuming
    stats = await world.stats()
    assert stats["repeated_callback_data"] == 0


async def test_pair_rate_and_server_errors_retried_template_error_final(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacer, "BACKOFF_BASE_S", 0.05)
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    ids = []
    for fault, text in (({"code": 131056}, "pair"), ({"http_status": 503}, "five-oh-three")):
        await world.sim.post("/_sim/faults", json={**fault, "count": 1})
        r = await world.owner.post(
            f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": text}
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
        m = await world.until(conv, ids[-1], "read", timeout=60)  # retried, then sent once
        assert m["error"] is None or m["error"]["code"] is None
    r = await world.owner.post(f"/api/v1/channels/{world.channel['id']}/templates/sync")
    assert r.status_code == 200, r.text
    await world.sim.post("/_sim/faults", json={"code": 132001, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages",
        json={
            "type": "template",
            "template": {
                "name": "order_update",
                "body": ["Ana", "A-1"],
                "buttons": [{"index": 0, "parameter": "A-1"}],
            },
        },
    )
    assert r.status_code == 202, r.text
    m = await world.until(conv, r.json()["id"], "failed", timeout=60)  # not retried
    assert m["error"]["code"] == 132001 and m["error"]["title"]
    stats = await world.stats()
    assert stats["rejected"] == {"131056": 1, "131016": 1, "132001": 1}, stats
    assert stats["accepted"] == 2 and stats["repeated_callback_data"] == 0


async def test_a_withheld_link_is_retried_as_sent_then_forgotten(world: World) -> None:
    """A text holding a secret of the customer's (a one-time link) keeps it only in its outbox
    row: a retry after a rate limit still sends the real text, and once Meta has it the row
    forgets it; the conversation has the placeholder from the start."""
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    link = "http://testserver/privacy/exports/download?token=only-ana-may-have-this"
    shown = "[download link sent to the customer]"
    await world.sim.post("/_sim/faults", json={"code": 130429, "count": 1})
    async with unit_of_work() as db:
        ws = (await db.get_one(Conversation, conv)).workspace_id
        sent, _ = await outbound.send_in_conversation(
            db,
            Principal(actor="system", workspace_id=ws),
            conv,
            SendIn(type="text", text=f"Your copy: {link}"),
            None,
            withheld={link: shown},
        )
    message_id = sent.message.id
    r = await world.owner.get(f"/api/v1/conversations/{conv}/messages")
    assert link not in r.text and f"Your copy: {shown}" in r.text

    async def row() -> OutboxMessage:
        async with unit_of_work() as db:
            stmt = select(OutboxMessage).where(OutboxMessage.message_id == message_id)
            return (await db.execute(stmt)).scalar_one()

    async with asyncio.timeout(15):  # refused once (130429), waiting for its retry
        while (waiting := await row()).error_code != 130429:
            await asyncio.sleep(0.02)
    # Pending (or claimed again): the row still has the real text to send.
    assert waiting.status in ("pending", "sending") and waiting.payload_enc is not None
    payload = await Vault().decrypt(
        ws, subject_of(waiting.contact_id), outbound.PAYLOAD, waiting.payload_enc
    )
    assert json.loads(payload)["text"]["body"] == f"Your copy: {link}"

    await world.until(conv, message_id, "read")
    done = await row()
    assert done.status == "sent" and done.attempts == 2 and done.payload_enc is None
    texts = [s["body"]["text"]["body"] for s in await world.sent(1, kind="message", to=ANA)]
    assert texts == [f"Your copy: {link}"]
    r = await world.owner.get(f"/api/v1/conversations/{conv}/messages")
    assert link not in r.text and f"Your copy: {shown}" in r.text


async def test_a_placeholder_says_what_was_sent_in_the_secrets_place() -> None:
    """The inbox tells a message that held a withheld secret by its placeholder ("[… sent to the
    customer]": never sent again, docs/privacy-requests.md), so ``withhold`` takes no other."""
    link, shown = "https://x/?token=t", "[download link sent to the customer]"
    kept = outbound.withhold({"text": f"Your copy: {link}"}, {link: shown})
    assert kept == {"text": f"Your copy: {shown}"} and outbound.holds_withheld(kept["text"])
    assert not outbound.holds_withheld(f"Your copy: {link}")
    with pytest.raises(ValueError):
        outbound.withhold("Your code: 123456", {"123456": "******"})
