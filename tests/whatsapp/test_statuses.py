"""Delivery statuses only move forward; failed is terminal with its error; duplicates and
reordering are harmless; each (message, status) is recorded once."""

from __future__ import annotations

import asyncio
import copy
import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.messages.service import apply_recorded_statuses
from connectx.models.channel import Channel
from connectx.models.message import Message, MessageStatusEvent
from tests.whatsapp.support import count, delivered, drain, load, rows
from tests.workspaces.helpers import Caller


async def outbound(wamid: str) -> None:
    """An outbound message row as the sender stores it (the sender is another feature)."""
    from connectx.contacts.service import Contacts
    from connectx.conversations.service import Conversations
    from connectx.integrations.whatsapp.schemas import Identity

    (channel,) = await rows(Channel)
    async with unit_of_work() as db:
        contact = await Contacts(db).resolve(channel.workspace_id, Identity("+16505551234"))
        assert contact is not None
        now = clock.now()
        conversation = await Conversations(db).open_for(
            channel.workspace_id, channel.id, contact.id, now
        )
        db.add(
            Message(
                workspace_id=channel.workspace_id,
                channel_id=channel.id,
                conversation_id=conversation.id,
                contact_id=contact.id,
                phone_number_id=channel.phone_number_id,
                wamid=wamid,
                direction="out",
                type="text",
                status="accepted",
                status_rank=0,
                sent_at=now,
                created_at=now,
            )
        )


def statuses_payload(*items: tuple[str, str, int]) -> dict[str, Any]:
    payload = load("statuses_out_of_order")
    value = payload["entry"][0]["changes"][0]["value"]
    template = value["statuses"][0]
    value["statuses"] = [
        {**copy.deepcopy(template), "id": wamid, "status": status, "timestamp": str(ts)}
        for wamid, status, ts in items
    ]
    return payload


async def status_of(wamid: str) -> Message:
    (message,) = await rows(Message, Message.wamid == wamid)
    return message


async def test_out_of_order_and_repeated_statuses_end_at_the_furthest(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    await outbound("wamid.OUT1")
    await outbound("wamid.OUT2")
    await delivered(client, load("statuses_out_of_order"))  # read, sent, delivered, read
    await delivered(client, load("statuses_out_of_order"))  # the whole callback again
    await drain()
    one = await status_of("wamid.OUT1")
    assert one.status == "read" and one.status_rank == 3
    assert one.status_at == datetime.fromtimestamp(1767225603, UTC)
    two = await status_of("wamid.OUT2")
    assert two.status == "failed"
    assert (two.error_code, two.error_title) == (131026, "Message undeliverable")
    # Each distinct (wamid, status) once, with Meta's pricing kept for billing.
    events = await rows(MessageStatusEvent, order_by=MessageStatusEvent.id)
    assert sorted((e.wamid, e.status) for e in events) == [
        ("wamid.OUT1", "delivered"),
        ("wamid.OUT1", "read"),
        ("wamid.OUT1", "sent"),
        ("wamid.OUT2", "delivered"),
        ("wamid.OUT2", "failed"),
        ("wamid.OUT2", "sent"),
    ]
    read = next(e for e in events if e.status == "read")
    assert read.pricing == {
        "billable": True,
        "pricing_model": "PMP",
        "category": "utility",
        "type": "regular",
    }


@pytest.mark.parametrize("seed", range(5))
async def test_any_order_any_repetition_across_deliveries(
    client: httpx.AsyncClient, channel: dict[str, Any], seed: int
) -> None:
    await outbound("wamid.OUTX")
    callbacks = [
        ("wamid.OUTX", s, 1767225600 + i)
        for i, s in enumerate(["sent", "delivered", "read", "played"])
    ]
    callbacks = callbacks * 2
    random.Random(seed).shuffle(callbacks)
    for i in range(0, len(callbacks), 3):  # several POSTs, several batches
        await delivered(client, statuses_payload(*callbacks[i : i + 3]))
        if i % 2:
            await drain()
    await drain()
    message = await status_of("wamid.OUTX")
    assert message.status == "played"
    assert await count(MessageStatusEvent) == 4


async def test_failed_is_terminal(client: httpx.AsyncClient, channel: dict[str, Any]) -> None:
    await outbound("wamid.OUTF")
    await delivered(client, load("statuses_out_of_order"))  # OUT2: sent, failed, delivered
    await drain()
    await delivered(client, statuses_payload(("wamid.OUT2", "read", 1767225700)))
    await drain()
    # OUT2 is not in our database: statuses for unknown messages are recorded and harmless.
    assert await count(Message, Message.wamid == "wamid.OUT2") == 0
    await delivered(client, statuses_payload(("wamid.OUTF", "failed", 1767225601)))
    await drain()
    await delivered(client, statuses_payload(("wamid.OUTF", "read", 1767225602)))
    await drain()
    assert (await status_of("wamid.OUTF")).status == "failed"


async def test_statuses_that_arrive_before_the_sent_message_is_stored_are_applied(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """The sender stores its message after Meta's API answers; callbacks can be faster."""
    await delivered(client, statuses_payload(("wamid.EARLY", "delivered", 1767225601)))
    await drain()
    await outbound("wamid.EARLY")
    (message,) = await rows(Message, Message.wamid == "wamid.EARLY")
    async with unit_of_work() as db:
        await apply_recorded_statuses(db, [message])
    assert (await status_of("wamid.EARLY")).status == "delivered"


async def test_outbound_messages_do_not_open_the_window(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await outbound("wamid.OUTW")
    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    assert conversation["last_inbound_at"] is None and conversation["window_open"] is False


async def test_a_callback_whose_transaction_overlaps_the_senders_is_applied(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the processor records a callback for a wamid it finds no message for, the
    sender stores that wamid and commits, looks for early callbacks (the processor's is not
    committed yet, so it sees none), and only then does the processor commit. One of the two
    must look again after its own commit, or the status is never applied."""
    from connectx.config import get_settings
    from connectx.messages.service import Messages
    from connectx.outbound import pacer

    if get_settings().is_sqlite:
        pytest.skip("SQLite's writers take turns: the two transactions cannot overlap")
    recorded = asyncio.Event()
    release = asyncio.Event()
    original = Messages.record_statuses

    async def held(self: Messages, channel: Channel, statuses: list[Any]) -> list[Any]:
        refs = await original(self, channel, statuses)
        recorded.set()
        await release.wait()  # the processing transaction stays open here
        return refs

    monkeypatch.setattr(Messages, "record_statuses", held)
    await delivered(client, statuses_payload(("wamid.OVERLAP", "delivered", 1767225601)))
    processing = asyncio.create_task(drain())
    try:
        await asyncio.wait_for(recorded.wait(), 15)
        await outbound("wamid.OVERLAP")  # the sender stores Meta's answer and commits
        (message,) = await rows(Message, Message.wamid == "wamid.OVERLAP")
        async with unit_of_work() as db:
            await pacer._apply_early_statuses(db, [(message.id, "wamid.OVERLAP")], publish=True)
        seen_by_the_sender = (await status_of("wamid.OVERLAP")).status
    finally:
        release.set()  # (a failure here must not leave the transaction open)
    assert seen_by_the_sender == "accepted"  # its look found no callback yet
    await asyncio.wait_for(processing, 30)
    # (The app's own processor may be the one that held: its look after the commit can end
    # a moment after drain() saw no event pending.)
    for _ in range(100):
        if (await status_of("wamid.OVERLAP")).status != "accepted":
            break
        await asyncio.sleep(0.05)
    assert (await status_of("wamid.OVERLAP")).status == "delivered"
