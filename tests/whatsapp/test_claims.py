"""How much one processing transaction takes on: small (batch-1) events are claimed by the
hundred, since each transaction pays a fixed part of about fifteen statements; events with many
updates are decoded and prefetched only up to the update budget, never all of a claim."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
from typing import Any

import httpx

from connectx.intake import dispatch, processor
from connectx.models.message import MessageStatusEvent
from connectx.models.webhook_event import WebhookEvent
from tests.whatsapp.support import (
    count,
    delivered,
    drain,
    event_counts,
    load,
    rows,
    sent_statuses,
)


def _statuses(event: int, n: int) -> dict[str, Any]:
    """One POST with ``n`` status callbacks of outbound messages of our own."""
    return sent_statuses(f"wamid.claims.{event}", n)


async def _in_fresh_context(coro: Any) -> Any:
    """Run as a fresh processor would (no claim size or update budget learned yet)."""
    return await asyncio.get_running_loop().create_task(coro, context=contextvars.Context())


def test_claims_are_shorter_where_intake_shares_the_write_lock(monkeypatch: Any) -> None:
    """Only a SQLite database whose raw events share the data file's one write lock (no file:
    no events file beside it) keeps processing transactions to 200 events, so a group commit
    waits less for the processor's turn; elsewhere 600."""
    from connectx.config import get_settings
    from connectx.db import events_file

    assert events_file.split() or not get_settings().is_sqlite  # (the suite's databases)
    monkeypatch.setattr(events_file, "split", lambda: False)
    assert processor.events_per_batch() == (200 if get_settings().is_sqlite else 600)


async def test_small_events_are_claimed_by_the_hundred(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    # (600 where no write lock is shared with intake: PostgreSQL, and SQLite with its raw events
    # in a file of their own, as here)
    assert processor.events_per_batch() == 600
    processor.stop_embedded()  # this test drives processing itself
    for event in range(120):
        await delivered(client, _statuses(event, 1))
    assert await _in_fresh_context(processor.process_batch()) == 120  # one transaction (was 50)
    assert await event_counts() == {"processed": 120}
    assert await count(MessageStatusEvent) == 120


async def test_large_events_are_decoded_only_up_to_the_update_budget(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: Any
) -> None:
    """A claim of 50-update events decodes about ``UPDATES_PER_TX`` updates' worth of them, not
    every claimed event (which it then left for the next transaction to decode again); every
    update is still applied exactly once."""
    processor.stop_embedded()
    assert processor.UPDATES_PER_TX == 1024
    for event in range(25):
        await delivered(client, _statuses(event, 50))
    decoded: list[int] = []
    real = dispatch.Decoder.decode

    async def counting(self: dispatch.Decoder, event: Any) -> Any:
        decoded.append(event.id)
        return await real(self, event)

    monkeypatch.setattr(dispatch.Decoder, "decode", counting)
    assert await _in_fresh_context(processor.process_batch()) == 25  # claimed ...
    assert len(decoded) == 21  # ... but only about 1,024 updates' worth decoded (was all 25)
    events = await rows(WebhookEvent, order_by=WebhookEvent.id)
    assert [e.status for e in events] == ["processed"] * 20 + ["pending"] * 5
    assert all(e.progress == 0 for e in events[20:])  # whole events: none left half done
    assert await drain() == {"processed": 25}
    assert await count(MessageStatusEvent) == 1250


async def test_claims_grow_back_after_a_smaller_one(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: Any
) -> None:
    """A claim sized down (to the update budget at 50 updates an event, or to what fitted
    before a turn was cut short) is not a ceiling: once the events are small again and
    transactions are not cut, claims grow back to ``EVENTS_PER_BATCH``. (They used to stay at
    the smaller size for good: after a burst of batched webhooks a processor claimed 41
    batch-1 events a transaction, after a turn cut for intake 4, and paid the transaction's
    fixed part per 4 events: bench/results/intake-2026-12-04.md.)"""
    processor.stop_embedded()
    sizes: list[int] = []
    real = processor.repo.claim

    async def claim(db: Any, limit: int) -> Any:
        sizes.append(limit)
        return await real(db, limit)

    monkeypatch.setattr(processor.repo, "claim", claim)
    # Claims are sized by the update budget here, never by the time budget: a loaded CI run once
    # spent the 0.5 s on part of the first claim, which made it [full, full, 41].
    unhurried = functools.partial(dispatch.BatchProcessor, budget_s=60.0)
    monkeypatch.setattr(processor, "BatchProcessor", unhurried)

    full = processor.events_per_batch()  # 600

    async def scenario() -> None:
        for event in range(10):  # a burst of 50-update events: claims sized to the budget
            await delivered(client, _statuses(event, 50))
        await processor.process_available()
        assert sizes == [full, 41]  # then sized to 2,048 updates at 50 an event
        for event in range(10, 310):  # then batch-1 events
            await delivered(client, _statuses(event, 1))
        del sizes[:]
        await processor.process_available()
        # back to full claims (was 41 for good: eight transactions); the last one finds none
        assert sizes == [41] + [full] * (-(-(300 - 41) // full) + 1)
        processor._claim_size.set(processor.MIN_CLAIM)  # as a turn cut short for intake leaves
        processor._item_budget.set(processor.MIN_ITEMS)
        for event in range(310, 410):
            await delivered(client, _statuses(event, 1))
        del sizes[:]
        await processor.process_available()
        assert sizes == [4, 17, 33, 65, 129]  # doubling back (was 4 for good: 25 transactions)

    await _in_fresh_context(scenario())
    assert await event_counts() == {"processed": 410}
    assert await count(MessageStatusEvent) == 900


async def test_a_transactions_events_are_marked_done_in_one_statement_execution(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """PostgreSQL: the claimed events are marked processed by one statement execution (rows as
    arrays), not an executemany (a statement execution per event on the server)."""
    from sqlalchemy import event

    from connectx.config import get_settings
    from connectx.db.engine import get_engine

    if get_settings().is_sqlite:
        import pytest

        pytest.skip("SQLite runs in-process: its executemany is one call")
    processor.stop_embedded()
    for n in range(30):
        await delivered(client, _statuses(n, 1))
    marks: list[bool] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE WEBHOOK_EVENTS"):
            marks.append(many)

    engine = get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert await _in_fresh_context(processor.process_batch()) == 30
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert marks == [False]  # one execution (was an executemany of 30)
    assert await event_counts() == {"processed": 30}
    (first, *_) = await rows(WebhookEvent, order_by=WebhookEvent.id)
    assert (first.items, first.progress, first.processed_at is not None) == (1, 1, True)


async def test_a_processed_batch_is_freed_without_the_garbage_collector(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: Any
) -> None:
    """What a transaction decoded and planned is freed when it ends, by reference counting: a
    reference cycle (the batch's bound methods given to the contacts service as hooks) kept it
    until the quieted collector's next full collection, ~10 KB an update (the processing
    process's peak grew by tens of MB with claims of thousands of updates)."""
    import gc
    import weakref

    processor.stop_embedded()
    for event in range(3):
        await delivered(client, _statuses(event, 5))
    await delivered(client, load("message_text"))
    batches: list[weakref.ref[dispatch.BatchProcessor]] = []
    real = dispatch.BatchProcessor.__init__

    def init(self: dispatch.BatchProcessor, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        batches.append(weakref.ref(self))

    monkeypatch.setattr(dispatch.BatchProcessor, "__init__", init)
    gc.collect()
    gc.disable()
    try:
        assert await _in_fresh_context(processor.process_batch()) == 4
        assert len(batches) == 1
        assert batches[0]() is None  # gone as soon as the transaction was done with it
    finally:
        gc.enable()
    assert await event_counts() == {"processed": 4}


def _texts(first: int, n: int) -> dict[str, Any]:
    """One POST with ``n`` text messages from ``n`` customers."""
    payload = copy.deepcopy(load("message_text"))
    value = payload["entry"][0]["changes"][0]["value"]
    template = value["messages"][0]
    value["contacts"] = [
        {"profile": {"name": f"Customer {k}"}, "wa_id": f"1650555{k:04d}"}
        for k in range(first, first + n)
    ]
    value["messages"] = [
        {**template, "from": f"1650555{k:04d}", "from_user_id": "", "id": f"wamid.claims.t{k}"}
        for k in range(first, first + n)
    ]
    return payload


async def test_batch_look_ups_are_one_statement_text_whatever_their_size(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """PostgreSQL: the batch look-ups (messages known or awaited, people, open conversations,
    status references) pass their lists as one array parameter, so their SQL is the same for
    3 and 7 values (one prepared statement); an ``IN`` rendered a placeholder per value, a new
    statement for the server to parse for every length."""
    from sqlalchemy import event

    from connectx.config import get_settings
    from connectx.db.engine import get_engine

    if get_settings().is_sqlite:
        import pytest

        pytest.skip("SQLite has no arrays: IN stays")
    processor.stop_embedded()
    texts: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        flat = " ".join(statement.split())
        where = flat.partition(" WHERE ")[2]
        looks_up = ("messages.wamid", "target_wamid", "phone_index", "bsuid_index", "contact_id")
        if flat.startswith("SELECT") and any(column in where for column in looks_up):
            texts.append(flat)

    engine = get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await delivered(client, _texts(0, 3))
        await _in_fresh_context(processor.process_batch())
        first, texts[:] = list(texts), []
        await delivered(client, _texts(3, 7))
        await _in_fresh_context(processor.process_batch())
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert first and texts
    assert not [t for t in first + texts if " IN (" in t]
    assert set(first) == set(texts)
    assert await event_counts() == {"processed": 2}
