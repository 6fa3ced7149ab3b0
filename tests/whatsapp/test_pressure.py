"""Intake first (intake/pressure.py): a saturated web process makes the processors pace
themselves; a steady rate it keeps up with does not; the processing process hears it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectx.intake import batcher as batcher_module
from connectx.intake import pressure, processor, wakeup
from connectx.intake import process as processing_process
from tests.whatsapp.support import deliver, drain, load


@pytest.fixture(autouse=True)
def no_pressure() -> Iterator[None]:
    pressure.clear()
    yield
    pressure.clear()


class Readings:
    """A fake clock and a fake count of the thread's run-or-wait seconds."""

    def __init__(self) -> None:
        self.now = 100.0
        self.used = 10.0

    def advance(self, wall: float, used: float) -> None:
        self.now += wall
        self.used += used


def _meter(r: Readings) -> pressure.LoopMeter:
    meter = pressure.LoopMeter(used=lambda: r.used, clock=lambda: r.now)
    assert meter.sample(1) is None  # the first sample opens the first window
    return meter


def test_a_loop_saturated_for_three_windows_in_a_row_is_busy_and_tells_the_hooks() -> None:
    r = Readings()
    meter = _meter(r)
    heard: list[int] = []
    remove = pressure.on_busy(lambda: heard.append(1))
    try:
        r.advance(0.0625, 0.0625)
        assert meter.sample(40) is None  # the window is not over yet
        r.advance(0.0625, 0.05)
        assert meter.sample(30) == pytest.approx(0.9)  # saturated: one window
        for demand, rows in ((0.95, 64), (0.5, 64), (0.95, 64), (0.95, 64)):
            r.advance(0.125, 0.125 * demand)
            meter.sample(rows)
        assert not pressure.busy() and heard == []  # never three in a row: a burst, not load
        r.advance(0.125, 0.125)
        assert meter.sample(64) == pytest.approx(1.0)
        assert pressure.busy() and heard == [1]
        r.advance(0.125, 0.125)
        meter.sample(64)
        assert heard == [1, 1]  # every saturated window from then on
    finally:
        remove()


@pytest.mark.parametrize(
    ("demand", "rows"),
    [
        (0.6, 40),  # requests queue (a slow disk) but the loop idles: a steady rate, not a burst
        (0.95, 5),  # the loop is busy, but with work other than queued webhooks
    ],
)
def test_a_loop_that_keeps_up_is_not_busy(demand: float, rows: int) -> None:
    r = Readings()
    meter = _meter(r)
    heard: list[int] = []
    remove = pressure.on_busy(lambda: heard.append(1))
    try:
        for _ in range(5):
            r.advance(0.125, 0.125 * demand)
            assert meter.sample(rows) == pytest.approx(demand)
        assert not pressure.busy() and heard == []
    finally:
        remove()


def test_busy_lasts_hold_s_after_the_last_busy_window() -> None:
    now = time.monotonic()
    pressure.note_busy(now - pressure.HOLD_S + 0.2)
    assert pressure.busy()
    pressure.note_busy(now - pressure.HOLD_S - 0.01)  # (an older window changes nothing)
    assert pressure.busy()
    pressure.clear()
    pressure.note_busy(now - pressure.HOLD_S - 0.01)
    assert not pressure.busy()


def test_the_demand_is_the_processs() -> None:
    """Measured for real (schedstat on Linux): a loop thread that never idles demands about a
    whole CPU whether or not it gets one; a sleeping one nearly nothing, unless another thread
    of the process works meanwhile (on SQLite the driver's thread writes the group commit)."""
    meter = pressure.LoopMeter()
    meter.sample(1)
    end = time.monotonic() + 0.15
    while time.monotonic() < end:
        pass
    spinning = meter.sample(1)
    assert spinning is not None and spinning > 0.75
    time.sleep(0.15)
    sleeping = meter.sample(1)
    assert sleeping is not None and sleeping < 0.3

    worked: list[float] = []

    def spin() -> None:
        started = time.thread_time()
        end = time.monotonic() + 0.15
        while time.monotonic() < end:
            pass
        worked.append(time.thread_time() - started)

    opened = time.monotonic()  # (the window opened at the last sample, just now)
    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()  # the loop's thread waits: the other thread's CPU is the process's demand
    waiting_on_a_worker = meter.sample(1)
    share = worked[0] / (time.monotonic() - opened)  # (what the machine let the worker have)
    assert share > 0.2
    assert waiting_on_a_worker is not None and waiting_on_a_worker >= 0.8 * share


async def test_pace_pauses_pace_times_the_batch_while_busy_and_ends_with_the_pressure() -> None:
    assert await pressure.pace(0.05) == 0  # nothing to give way to
    pressure.note_busy()
    started = time.monotonic()
    worked = 0.02  # (PACE times it stays well inside the HOLD_S the pressure lasts)
    assert pressure.PACE * worked < pressure.HOLD_S * 0.5
    assert await pressure.pace(worked) == pytest.approx(pressure.PACE * worked)
    assert time.monotonic() - started >= pressure.PACE * worked * 0.9

    loop = asyncio.get_running_loop()
    pressure.note_busy()
    loop.call_later(0.1, pressure.clear)  # the burst ends during the pause
    started = time.monotonic()
    paused = await pressure.pace(10.0)  # (capped at MAX_PAUSE_S)
    assert paused < 0.3 and time.monotonic() - started < 0.5

    stopping = threading.Event()  # a processor asked to stop ends its pause too
    pressure.note_busy()
    loop.call_later(0.1, stopping.set)
    started = time.monotonic()
    paused = await pressure.pace(10.0, stopping)
    assert paused < 0.3 and time.monotonic() - started < 0.5
    assert pressure.busy()  # (the pressure itself went on)


async def test_the_processor_paces_between_batches_only_while_intake_is_busy(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await processor.close_embedded()  # (the app's own processor would take events meanwhile)
    paced: list[float] = []
    told: list[threading.Event | None] = []

    async def recorded(worked_s: float, stopping: threading.Event | None = None) -> float:
        paced.append(worked_s)
        told.append(stopping)
        return 0.0

    monkeypatch.setattr(pressure, "pace", recorded)
    payload = load("message_text")
    for i in range(3):
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.paced.{i}"
        assert (await deliver(client, payload)).status_code == 200
    pressure.clear()
    assert await processor.process_available(limit=1, max_batches=1) == 1
    assert paced == []  # not busy: no pause

    monkeypatch.setattr(pressure, "HOLD_S", 60.0)
    pressure.note_busy()
    stop = threading.Event()  # (never set: the pause is told of it, so a stop can end it)
    assert await processor.process_available(limit=1, stopping=stop) == 2
    assert len(paced) == 2 and all(s > 0 for s in paced)  # after each batch, its duration
    assert told == [stop, stop]
    await drain()


async def test_group_commits_measure_the_loop(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flusher samples the meter after its commits: with the thresholds at nothing, two
    deliveries (the first opens the first window) make intake busy."""
    await batcher_module.close()  # the next delivery starts the flusher (and its meter) again
    monkeypatch.setattr(pressure, "WINDOW_S", 0.0)
    monkeypatch.setattr(pressure, "BUSY_DEMAND", 0.0)
    monkeypatch.setattr(pressure, "BUSY_ROWS", 1)
    monkeypatch.setattr(pressure, "BUSY_STREAK", 1)
    payload = load("message_text")
    for i in range(2):
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.meter.{i}"
        assert (await deliver(client, payload)).status_code == 200
    assert pressure.busy()
    await drain()


async def test_the_web_process_tells_the_processing_process() -> None:
    """Each busy window is a ``b`` line to the child, which paces its processor; any other line
    is a wake-up."""
    ours, theirs = socket.socketpair()
    link = processing_process.ProcessingProcess()
    try:
        _, link._writer = await asyncio.open_unix_connection(sock=ours)
        reader, their_writer = await asyncio.open_unix_connection(sock=theirs)
        r = Readings()
        meter = _meter(r)
        for _ in range(pressure.BUSY_STREAK):
            r.advance(0.125, 0.125)
            meter.sample(64)
        assert await asyncio.wait_for(reader.readline(), 5) == b"b\n"
    finally:
        link._unhook()
        link._unhook_busy()
        if link._writer is not None:
            link._writer.close()
        their_writer.close()

    pressure.clear()
    seen = wakeup.generation()
    processing_process.heard(b"w\n")
    assert not pressure.busy() and wakeup.generation() == seen + 1
    processing_process.heard(b"b\n")
    assert pressure.busy() and wakeup.generation() == seen + 1
