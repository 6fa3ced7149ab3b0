"""Woken by new events, a processor waits ``CONNECTX_PROCESSING_GATHER_MS`` before it claims, so
events arriving close together share one transaction (its fixed part is most of an event's cost
at moderate rates)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from connectx.config import reset_settings
from connectx.intake import processor, wakeup
from connectx.models.webhook_event import WebhookEvent
from tests.whatsapp.support import delivered, event_counts, load, rows


async def test_events_arriving_together_share_a_transaction(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()  # this test runs the loop itself
    monkeypatch.setenv("CONNECTX_PROCESSING_GATHER_MS", "500")  # far more than three POSTs take
    reset_settings()
    stopping = threading.Event()
    # A sweep timer far away: only the wake-ups of intake's commits start a pass.
    loop_task = asyncio.create_task(processor.run_forever(stopping, poll_s=30))
    try:
        while not wakeup._waiters:  # the loop has found nothing and waits to be woken
            await asyncio.sleep(0.01)
        for n in range(3):
            payload = load("message_text")
            payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.gather.{n}"
            await delivered(client, payload)
        deadline = asyncio.get_running_loop().time() + 20
        while (await event_counts()) != {"processed": 3}:
            assert asyncio.get_running_loop().time() < deadline, await event_counts()
            await asyncio.sleep(0.02)
    finally:
        stopping.set()
        wakeup.notify()
        await asyncio.wait_for(loop_task, 30)
    events = await rows(WebhookEvent, order_by=WebhookEvent.id)
    assert len({e.processed_at for e in events}) == 1  # one transaction
    first = events[0]
    assert first.processed_at is not None
    # woken by the first commit, the processor waited the gathering time before claiming
    assert (first.processed_at - first.received_at).total_seconds() >= 0.45
