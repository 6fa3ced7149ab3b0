"""Background threads of the web process stay asleep while they have nothing to do: each
wake-up of one takes the GIL from the event loop answering webhooks (docs/jobs.md). The
reconciler sleeps until its next pass or a stop, and the outbox pacer looks for work less often
while intake is saturated, yet a send still wakes it at once."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from connectx.jobs import runtime
from connectx.outbound import pacer, wakeup


def _counting_loop() -> tuple[asyncio.AbstractEventLoop, list[int]]:
    """A new event loop that counts its waits for I/O (one per wake-up of its thread)."""
    loop = asyncio.new_event_loop()
    selects = [0]
    selector = loop._selector  # type: ignore[attr-defined]
    real = selector.select

    def select(timeout: float | None = None) -> Any:
        selects[0] += 1
        return real(timeout)

    selector.select = select
    return loop, selects


def test_an_idle_reconciler_sleeps_until_its_next_pass_and_stops_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[float] = []

    async def reconcile(wake: Any) -> None:
        passes.append(time.monotonic())

    async def tick() -> None:
        return None

    monkeypatch.setattr(runtime.runner, "reconcile", reconcile)
    monkeypatch.setattr(runtime.periodic, "tick", tick)
    loop, selects = _counting_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        reconciler = runtime._Reconciler(30.0, wake=lambda job_id: None)  # type: ignore[arg-type,return-value]
        reconciler._loop = loop
        reconciler.future = asyncio.run_coroutine_threadsafe(reconciler._forever(), loop)
        deadline = time.monotonic() + 5
        while not passes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(passes) == 1
        time.sleep(0.1)
        before = selects[0]
        time.sleep(0.6)  # a reconciler looking for a stop every 0.1 s woke ~6 times here
        assert selects[0] - before <= 1
        started = time.monotonic()
        reconciler.before_worker_shutdown(None, None)  # type: ignore[arg-type]
        assert time.monotonic() - started < 1.0  # not at the end of its 30 s interval
        assert reconciler.future is None
        assert len(passes) == 1
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def test_a_reconciler_told_to_stop_before_it_started_does_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes: list[int] = []

    async def reconcile(wake: Any) -> None:
        passes.append(1)

    monkeypatch.setattr(runtime.runner, "reconcile", reconcile)
    reconciler = runtime._Reconciler(30.0, wake=lambda job_id: None)  # type: ignore[arg-type,return-value]
    reconciler._stop.set()
    await asyncio.wait_for(reconciler._forever(), 1.0)
    assert passes == []


class _CountingPacer:
    def __init__(self) -> None:
        self.ticks: list[float] = []

    async def tick(self) -> int:
        self.ticks.append(time.monotonic())
        return 0

    async def drain(self) -> None:
        return None


async def _ticks_in(
    monkeypatch: pytest.MonkeyPatch, busy: bool, seconds: float, notify_at: float | None = None
) -> list[float]:
    fake = _CountingPacer()
    monkeypatch.setattr(pacer, "Pacer", lambda: fake)
    monkeypatch.setattr(pacer, "busy", lambda: busy)
    wakeup.wait(0)  # (a wake-up left by an earlier test)
    stopping = threading.Event()
    started = time.monotonic()
    task = asyncio.create_task(pacer.run_forever(stopping, poll_s=0.05))
    if notify_at is not None:
        await asyncio.sleep(notify_at)
        wakeup.notify()  # what a committed send does
        await asyncio.sleep(seconds - notify_at)
    else:
        await asyncio.sleep(seconds)
    stopping.set()
    wakeup.notify()
    await asyncio.wait_for(task, 5)
    return [t - started for t in fake.ticks]


async def test_the_idle_pacer_looks_less_often_while_intake_is_saturated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quiet = await _ticks_in(monkeypatch, busy=False, seconds=0.5)
    assert len(quiet) >= 5  # every poll_s
    busy = await _ticks_in(monkeypatch, busy=True, seconds=0.5)
    assert len(busy) == 1  # at its start, then not before BUSY_POLL_S
    assert pacer.BUSY_POLL_S >= 0.5


async def test_a_send_wakes_the_pacer_at_once_even_while_intake_is_saturated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = await _ticks_in(monkeypatch, busy=True, seconds=0.5, notify_at=0.2)
    assert len(ticks) == 2
    assert 0.2 <= ticks[1] < 0.4
