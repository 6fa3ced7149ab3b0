"""Embedded mode on SQLite: a processing transaction gives the write lock to a waiting group
commit of webhook events (intake/turns.py) and continues later where it stopped; the embedded
processor runs in the web server's loop and comes back if its loop ends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectx.config import get_settings
from connectx.db.session import read_only
from connectx.intake import dispatch, processor
from connectx.models.message import Message
from connectx.models.webhook_event import WebhookEvent
from tests.whatsapp.support import batch, count, delivered, drain, event_counts, load, rows


def _three_messages() -> dict[str, Any]:
    payloads = []
    for n in range(3):
        payload = load("message_text")
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.turns.{n}"
        payloads.append(payload)
    return batch(*payloads)


async def test_a_group_commit_does_not_wait_for_a_processing_transaction(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: raw events live in a file of their own (db/events_file.py), so a webhook is
    stored and answered while a processing transaction holds the data file's write lock (it
    used to wait for the processor to cut its transaction short and let go)."""
    if not get_settings().is_sqlite:
        pytest.skip("SQLite's one write lock (PostgreSQL intake never waits)")
    processor.stop_embedded()  # this test drives processing itself
    await delivered(client, _three_messages())
    first_applied, go_on = asyncio.Event(), asyncio.Event()
    real_handle = dispatch.BatchProcessor._handle

    async def handle(self: dispatch.BatchProcessor, item: dispatch.Item) -> None:
        await real_handle(self, item)
        if not first_applied.is_set():
            first_applied.set()
            await go_on.wait()  # the transaction holds the data file's write lock here

    monkeypatch.setattr(dispatch.BatchProcessor, "_handle", handle)
    processing = asyncio.create_task(processor.process_batch())
    await first_applied.wait()
    try:
        await asyncio.wait_for(delivered(client, load("message_image")), 10)
        assert not processor.turns.intake_waiting()
        async with read_only() as db:  # (a write transaction would wait for the processor)
            stored = (await db.execute(select(WebhookEvent.status))).scalars().all()
        assert stored == ["pending", "pending"]
    finally:
        go_on.set()
    assert await processing == 1
    first, second = await rows(WebhookEvent, order_by=WebhookEvent.id)
    assert (first.status, first.progress) == ("processed", 3)  # not cut short for intake
    assert second.status == "pending"
    assert await count(Message) == 3
    monkeypatch.undo()
    assert await drain() == {"processed": 2}
    assert await count(Message) == 4


async def test_the_embedded_processor_is_a_task_of_the_app_loop_and_restarts(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()
    real = processor.run_forever
    runs: list[asyncio.AbstractEventLoop] = []

    async def ends_once(stopping: Any = None, poll_s: float = 0.05) -> None:
        runs.append(asyncio.get_running_loop())
        if len(runs) == 1:
            raise RuntimeError("the loop died")
        await real(stopping, poll_s)

    monkeypatch.setattr(processor, "run_forever", ends_once)
    monkeypatch.setattr(processor.EmbeddedProcessor, "RESTART_S", 0.01)
    embedded = processor.EmbeddedProcessor(poll_s=0.05)
    embedded.start()
    try:
        await delivered(client, load("message_text"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (await event_counts()).get("pending") and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert await event_counts() == {"processed": 1}
        assert runs == [loop, loop]  # this loop, started again after it ended
    finally:
        await embedded.aclose()


async def test_a_lock_wait_past_the_timeout_backs_off_without_counting_an_attempt(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a processing transaction waits at most ``lock_timeout`` for a person another
    transaction holds; the event is not blamed (no attempt) and is processed once it is free."""
    if get_settings().is_sqlite:
        pytest.skip("lock_timeout is PostgreSQL's (SQLite has one writer)")
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from connectx.db.session import unit_of_work
    from connectx.integrations.whatsapp.schemas import Identity
    from tests.whatsapp.support import CUSTOMER_PHONE

    processor.stop_embedded()
    await delivered(client, load("message_text"))
    monkeypatch.setattr(processor.repo, "LOCK_TIMEOUT", "200ms")
    from connectx.models.channel import Channel

    (number,) = await rows(Channel)
    keys = dispatch.person_keys(number.workspace_id, Identity(phone=CUSTOMER_PHONE))
    async with unit_of_work() as holder:  # another processor busy with the same person
        for key in keys:
            await holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        with pytest.raises(DBAPIError) as raised:
            await processor.process_available()
        assert processor.waited_too_long(raised.value)
    (event,) = await rows(WebhookEvent)
    assert (event.status, event.attempts) == ("pending", 0)
    assert await drain() == {"processed": 1}
    assert await count(Message) == 1


async def test_a_transaction_after_a_cut_prepares_only_about_what_fits(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a turn cut short, the next transaction applies at most about twice what fitted
    (``_item_budget``) and decodes and prefetches only that much; what is left of an event is
    continued later, and every update is applied exactly once (both databases)."""
    # Only the item budget cuts here: on a starved machine (CI, load 6) the time budget cut
    # the transaction after one update (progress 1, not 2).
    monkeypatch.setattr(dispatch.BatchProcessor, "_time_to_stop", lambda self, elapsed: False)
    processor.stop_embedded()
    await delivered(client, _three_messages())
    await delivered(client, load("message_image"))
    processor._item_budget.set(2)
    assert await processor.process_batch() == 2  # both claimed ...
    first, second = await rows(WebhookEvent, order_by=WebhookEvent.id)
    assert (first.status, first.progress) == ("pending", 2)  # ... two updates applied
    assert (second.status, second.progress) == ("pending", 0)  # not even decoded
    assert await count(Message) == 2
    assert await drain() == {"processed": 2}
    assert await count(Message) == 4


def test_turn_files_order_intake_and_a_processor_of_another_process(tmp_path: Any) -> None:
    """The lock files behave alike between processes and between open files of one process
    (flock locks belong to the open file): a processor sees a waiting intake, intake gets the
    turn once the processor lets go, and a process that closes its files (dies) releases them."""
    from connectx.intake.turns import _Files

    db = str(tmp_path / "x.db")
    worker, web = _Files(db), _Files(db)
    try:
        assert worker.try_turn()
        assert not worker.someone_wants()
        web.want_on()
        assert worker.someone_wants()
        assert not web.try_turn()  # the processor's transaction holds it
        worker.end_turn()  # ... it commits and lets go
        assert web.try_turn()
        web.want_off()
        assert not worker.someone_wants()
        assert not worker.try_turn()  # intake's group commit holds it now
        web.close()  # the web process dies holding its turn: released
        assert worker.try_turn()
    finally:
        worker.close()
        web.close()


async def test_waits_for_another_process_turn_block_instead_of_polling(tmp_path: Any) -> None:
    """Intake waiting for a turn another process holds, and a processor waiting for an intake
    of another process, sleep in the kernel (``flock`` on a thread) until the holder lets go:
    they do not retry every half millisecond (which cost the web process as much CPU as its
    POSTs). A wait that is cancelled leaves nothing held."""
    from connectx.intake import turns

    class Counting(turns._Files):
        tries = probes = 0

        def try_turn(self) -> bool:
            self.tries += 1
            return super().try_turn()

        def someone_wants(self) -> bool:
            self.probes += 1
            return super().someone_wants()

    db = str(tmp_path / "x.db")
    child, web = turns._Files(db), Counting(db)
    loop = asyncio.get_running_loop()
    turns._turns[loop] = turns._Turns(web)
    try:
        assert child.try_turn()  # the processing process's transaction

        async def group_commit() -> float:
            async with turns.intake_turn():
                return loop.time()

        waiting = asyncio.create_task(group_commit())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        assert child.someone_wants()
        released = loop.time()
        child.end_turn()
        assert await asyncio.wait_for(waiting, 5) - released < 0.1  # woken at once
        assert web.tries <= 2  # not polled (was ~400 tries in 0.2 s)

        # A processor of this loop waits for another process's intake the same way.
        child.want_on()
        web.probes = 0
        processing = asyncio.create_task(_enter(turns.processor_turn()))
        await asyncio.sleep(0.2)
        assert not processing.done()
        child.want_off()
        await asyncio.wait_for(processing, 5)
        assert web.probes <= 3

        # A cancelled wait gives back the turn it gets afterwards.
        assert child.try_turn()
        cancelled = asyncio.create_task(group_commit())
        await asyncio.sleep(0.1)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        child.end_turn()
        await asyncio.sleep(0.2)
        assert child.try_turn()
        child.end_turn()
    finally:
        del turns._turns[loop]
        child.close()
        web.close()


async def _enter(cm: Any) -> None:
    async with cm:
        pass


async def test_a_claim_is_decoded_before_the_write_lock_is_taken(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: a processor claims and decodes in a read transaction, before its turn at the
    write lock, so a group commit of webhook events does not wait for the decoding (it waited
    for the whole transaction: claim, decode, plan, prefetch, apply, commit)."""
    if not get_settings().is_sqlite:
        pytest.skip("turns at the write lock are SQLite's (PostgreSQL intake never waits)")
    processor.stop_embedded()
    await delivered(client, load("message_text"))
    real = dispatch.Decoder.decode
    stored_meanwhile: list[bool] = []
    deliveries: list[asyncio.Task[None]] = []

    async def decode(self: dispatch.Decoder, event: Any) -> Any:
        if not deliveries:  # a webhook arrives while the processor decodes
            deliveries.append(asyncio.create_task(delivered(client, load("message_image"))))
            done, _ = await asyncio.wait(deliveries, timeout=3)
            stored_meanwhile.append(bool(done))
        return await real(self, event)

    monkeypatch.setattr(dispatch.Decoder, "decode", decode)
    assert await processor.process_batch() == 1
    await deliveries[0]
    assert stored_meanwhile == [True]  # (was False: the group commit waited for the processor)
    assert await event_counts() == {"processed": 1, "pending": 1}
    monkeypatch.undo()
    assert await drain() == {"processed": 2}
    assert await count(Message) == 2


async def test_events_processed_between_the_claim_and_the_turn_are_not_applied_again(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: what a processor claimed before its turn is claimed again under the write lock:
    events another processor finished meanwhile are left alone, and an event continued
    meanwhile is continued from where it is now."""
    if not get_settings().is_sqlite:
        pytest.skip("claims before the turn are SQLite's (PostgreSQL claims FOR UPDATE)")
    processor.stop_embedded()
    await delivered(client, _three_messages())  # three updates in one event
    await delivered(client, load("message_image"))
    real = dispatch.Decoder.decode
    others: list[asyncio.Task[int]] = []

    async def decode(self: dispatch.Decoder, event: Any) -> Any:
        if not others:  # another processor (in another task) gets its turn first
            others.append(asyncio.create_task(_other_processor()))
            await asyncio.wait(others, timeout=3)
        return await real(self, event)

    async def _other_processor() -> int:
        processor._item_budget.set(2)  # (its own context) two of the first event's updates
        return await processor.process_batch()

    monkeypatch.setattr(dispatch.Decoder, "decode", decode)
    processed = dispatch.BatchProcessor._handle
    handled: list[str] = []

    async def handle(self: dispatch.BatchProcessor, item: dispatch.Item) -> None:
        handled.append(getattr(item.payload, "wamid", ""))
        await processed(self, item)

    monkeypatch.setattr(dispatch.BatchProcessor, "_handle", handle)
    assert await processor.process_batch() == 2
    assert others[0].done() and others[0].result() == 2  # it claimed both, applied two updates
    await others[0]
    assert await event_counts() == {"processed": 2}
    assert len(handled) == len(set(handled)) == 4  # each update applied once
    assert await count(Message) == 4
