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


async def test_a_busy_processor_lingers_after_taking_everything_pending(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load a processor is never idle, so it is never woken and never gathers: it
    claimed whatever had arrived since its last claim, and paid a transaction's fixed part for
    every few events. After a claim that took everything pending it now lingers, so the events
    arriving meanwhile share the next transaction."""
    processor.stop_embedded()  # this test drives processing itself

    def text(n: int) -> dict[str, Any]:
        payload = load("message_text")
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.linger.{n}"
        return payload

    await delivered(client, text(0))
    arrivals: list[asyncio.Task[None]] = []
    claims: list[int] = []
    batch = processor.process_batch

    async def observed(limit: int | None = None) -> int:
        claimed = await batch(limit)
        claims.append(claimed)
        if len(claims) == 1:  # three more arrive, one after the other, while it lingers

            async def arrive() -> None:
                for n in (1, 2, 3):
                    await delivered(client, text(n))
                    await asyncio.sleep(0.05)

            arrivals.append(asyncio.create_task(arrive()))
        return claimed

    monkeypatch.setattr(processor, "process_batch", observed)
    done = await processor.process_available(linger_s=0.6)
    await asyncio.gather(*arrivals)
    assert done == 4
    assert claims == [1, 3, 0]
    events = await rows(WebhookEvent, order_by=WebhookEvent.id)
    assert len({e.processed_at for e in events[1:]}) == 1  # one transaction
    assert (await event_counts()) == {"processed": 4}
