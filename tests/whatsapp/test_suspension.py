"""A suspended workspace's inbound events are stored (200) and kept pending, not processed,
while other workspaces' events go through; lifting the suspension processes them, once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from connectx.intake.processor import process_available
from connectx.models.message import Message
from connectx.models.webhook_event import WebhookEvent
from tests.retention.support import run_cli
from tests.whatsapp.support import (
    DISPLAY_B,
    PNID_B,
    WABA_B,
    channel_body,
    connect,
    count,
    delivered,
    drain,
    event_counts,
    for_number,
    load,
    rows,
)
from tests.workspaces.helpers import owner_of


async def test_a_suspended_workspace_s_events_wait_until_the_suspension_is_lifted(
    app: Any, client: httpx.AsyncClient
) -> None:
    owner, ws_a = await owner_of(app, "Spammy Offers")
    await connect(owner)
    other, ws_b = await owner_of(app, "Honest Shop")
    r = await other.post(
        "/api/v1/channels",
        json=channel_body(PNID_B, WABA_B, DISPLAY_B, verify_token=None),
    )
    assert r.status_code == 201, r.text
    suspended = await run_cli("admin", "suspend-workspace", str(ws_a), "--reason", "spam (4.2)")
    assert suspended.exit_code == 0, suspended.output

    message = load("message_text")
    await delivered(client, message)  # intake still answers 200 and stores the event
    await delivered(client, for_number(message, PNID_B, WABA_B))
    await _settle({"pending": 1, "processed": 1})
    assert await process_available() == 0  # the held event is not claimed again: no hot loop

    assert await count(Message, Message.workspace_id == ws_b) == 1
    assert await count(Message, Message.workspace_id == ws_a) == 0
    (held,) = await rows(WebhookEvent, WebhookEvent.status == "pending")
    assert held.held_for == ws_a and held.attempts == 0 and held.last_error is None

    lifted = await run_cli("admin", "lift-suspension", str(ws_a))
    assert lifted.exit_code == 0, lifted.output
    assert await drain() == {"processed": 2}
    (stored,) = await rows(Message, Message.workspace_id == ws_a)
    assert stored.wamid == "wamid.TEXT1"
    assert await count(Message) == 2
    (event,) = await rows(WebhookEvent, WebhookEvent.id == held.id)
    assert event.held_for is None
    await owner.client.aclose()
    await other.client.aclose()


async def _settle(expected: dict[str, int], timeout_s: float = 30.0) -> None:
    """Process until the events reach ``expected`` (the app's own processor may be running
    beside us and hold a batch for a moment)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (counts := await event_counts()) != expected:
        assert loop.time() < deadline, counts
        await process_available()
        await asyncio.sleep(0.05)
