"""The processor loop always resumes: a failing pass (a pool timeout, a ``CancelledError`` leaking
out of a driver or a wake-up) never ends it, and pending events are still processed. And a
database that cannot be read while checking a webhook's signature gives a 503 with Retry-After."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from connectx.channels import app_secrets
from connectx.channels import repository as channel_repo
from connectx.intake import processor, wakeup
from connectx.models.message import Message
from tests.whatsapp.support import count, deliver, delivered, event_counts, load


async def _until_processed(timeout_s: float) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (counts := await event_counts()).get("pending") and loop.time() < deadline:
        await asyncio.sleep(0.1)
    return counts


async def test_loop_resumes_after_failed_passes_and_a_failed_wakeup(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()  # this test runs the loop itself
    await delivered(client, load("message_text"))
    failures: list[BaseException] = [
        PoolTimeout("QueuePool limit reached, connection timed out"),
        asyncio.CancelledError(),  # leaked by a driver: nobody cancelled the loop
    ]
    real_batch, real_wait = processor.process_batch, wakeup.wait

    async def flaky_batch(limit: int = processor.EVENTS_PER_BATCH) -> int:
        if failures:
            raise failures.pop(0)
        return await real_batch(limit)

    wake_failures = [asyncio.CancelledError()]

    async def flaky_wait(timeout_s: float, seen: int | None = None) -> bool:
        if wake_failures:
            raise wake_failures.pop(0)
        return await real_wait(timeout_s, seen)

    monkeypatch.setattr(processor, "process_batch", flaky_batch)
    monkeypatch.setattr(processor, "_one_by_one", flaky_batch)  # the retry fails the same way
    monkeypatch.setattr(wakeup, "wait", flaky_wait)
    stopping = threading.Event()
    loop_task = asyncio.create_task(processor.run_forever(stopping, poll_s=0.1))
    try:
        assert await _until_processed(20) == {"processed": 1}
        assert not failures and not wake_failures
        assert await count(Message) == 1

        # The loop is still alive after the processed batch (the wake-up failed once): a new
        # event is picked up by the sweep although nobody notifies.
        monkeypatch.setattr(wakeup, "notify", lambda: None)
        payload = load("message_text")
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.resumes.2"
        await delivered(client, payload)
        assert await _until_processed(20) == {"processed": 2}
        assert not loop_task.done()
    finally:
        stopping.set()
        await asyncio.wait_for(loop_task, 30)


async def test_a_real_cancellation_still_stops_the_loop(channel: dict[str, Any]) -> None:
    processor.stop_embedded()
    loop_task = asyncio.create_task(processor.run_forever(None, poll_s=0.05))
    await asyncio.sleep(0.3)
    loop_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop_task


async def test_unreadable_secrets_database_gives_503_with_retry_after(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()

    async def pool_timeout(*_: Any, **__: Any) -> Any:
        raise PoolTimeout("QueuePool limit reached, connection timed out")

    monkeypatch.setattr(app_secrets, "cache", app_secrets.AppSecretCache())  # nothing loaded
    real = channel_repo.live_apps
    monkeypatch.setattr(channel_repo, "live_apps", pool_timeout)
    r = await deliver(client, load("message_text"))
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await event_counts() == {}

    monkeypatch.setattr(channel_repo, "live_apps", real)  # the database answers: Meta's retry
    app_secrets.cache._last_load_attempt = 0.0  # (no need to wait out MISS_RELOAD_S)
    await delivered(client, load("message_text"))
    assert await event_counts() == {"pending": 1}


async def test_processor_thread_restarts_a_loop_that_ended(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()
    await delivered(client, load("message_text"))
    real = processor.run_forever
    runs: list[int] = []

    async def ends_once(stopping: threading.Event | None = None, poll_s: float = 0.1) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("the loop died")  # whatever ends a loop, the thread goes on
        await real(stopping, poll_s)

    monkeypatch.setattr(processor, "run_forever", ends_once)
    thread = processor.ProcessorThread(poll_s=0.1)
    thread.start()
    try:
        assert await _until_processed(20) == {"processed": 1}
        assert len(runs) == 2
    finally:
        await asyncio.to_thread(thread.stop)
