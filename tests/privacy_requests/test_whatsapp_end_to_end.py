"""A customer writes "DELETE MY DATA" to the business through the simulator (signed webhooks in,
the pacer's real HTTP out): the chat guides them, the request is filed verified by the channel,
the workspace approves it over HTTP, the customer is told on their phone, and the erasure runs
as a job once that last message has left."""

from __future__ import annotations

import asyncio

from connectx.models.contact import Contact
from tests.outbound.conftest import World
from tests.privacy_requests.support import actions, all_requests
from tests.whatsapp.support import count

CUSTOMER = "16505550177"


async def _texts(world: World, n: int) -> list[str]:
    sent = await world.sent(n, kind="message", to=CUSTOMER)
    return [str(s["body"].get("text", {}).get("body", "")) for s in sent]


async def test_delete_my_data_end_to_end(world: World) -> None:
    await world.customer_says(CUSTOMER, "DELETE MY DATA")
    [confirm] = await _texts(world, 1)
    assert "erasing your data" in confirm and "YES" in confirm

    await world.customer_says(CUSTOMER, "Yes")
    texts = await _texts(world, 2)
    [req] = await all_requests()
    assert (req.kind, req.source, req.status, req.verification) == (
        "erasure",
        "whatsapp",
        "pending",
        "whatsapp_channel",
    )
    assert req.reference in texts[1] and "will answer it by" in texts[1]

    r = await world.owner.post(f"/api/v1/privacy/requests/{req.id}/approve")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_progress"
    texts = await _texts(world, 3)
    assert "last message" in texts[2]

    # The job waits for that message to leave the outbox, then runs the executor.
    async with asyncio.timeout(40):
        while True:
            [req] = await all_requests()
            if req.status != "in_progress":
                break
            await asyncio.sleep(0.2)
    steps = await actions(req.id)
    assert req.status == "completed", steps
    assert req.closed_at is not None and "completed" in steps
    # The customer is erased: no contact of this workspace still holds a number.
    assert await count(Contact, Contact.phone_index.is_not(None)) == 0
