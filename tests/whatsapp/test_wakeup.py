"""Wake-ups after a group commit: a waiter (or the processing process's link) on the notifying
thread's own loop is woken without ``call_soon_threadsafe`` (a write to the loop's self-pipe per
wake-up); one on another thread's loop still is woken through it. The processing process gets
one wake-up until it says it sleeps (``i``), then once more if commits came meanwhile."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from connectx.intake import process as processing_process
from connectx.intake import wakeup


def count_threadsafe_calls(
    monkeypatch: pytest.MonkeyPatch, loop: asyncio.AbstractEventLoop
) -> list[Any]:
    calls: list[Any] = []
    real = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    return calls


async def test_a_waiter_on_the_notifying_loop_is_woken_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_threadsafe_calls(monkeypatch, asyncio.get_running_loop())
    waiting = asyncio.create_task(wakeup.wait(5.0))
    await asyncio.sleep(0)  # it waits now
    wakeup.notify()
    assert await asyncio.wait_for(waiting, 1.0) is True
    assert calls == []


async def test_a_waiter_on_another_thread_is_still_woken() -> None:
    seen = wakeup.generation()
    woken: list[bool] = []
    started = threading.Event()

    def other() -> None:
        async def wait() -> bool:
            started.set()
            return await wakeup.wait(5.0, seen)

        woken.append(asyncio.run(wait()))

    thread = threading.Thread(target=other)
    thread.start()
    started.wait(5.0)
    await asyncio.sleep(0.05)
    wakeup.notify()
    await asyncio.to_thread(thread.join, 5.0)
    assert woken == [True]


class Writer:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


async def test_the_processing_process_is_poked_without_a_self_pipe_write_from_its_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    calls = count_threadsafe_calls(monkeypatch, loop)
    link = processing_process.ProcessingProcess()
    writer = Writer()
    try:
        link._loop, link._writer = loop, writer  # type: ignore[assignment]
        wakeup.notify()
        wakeup.notify()  # coalesced with the first
        await asyncio.sleep(0)
        assert writer.written == [b"w\n"]
        assert calls == []
        # from another thread it still goes through the loop's thread-safe call
        link._child_sleeps()
        await asyncio.to_thread(wakeup.notify)
        await asyncio.sleep(0.01)
        assert writer.written == [b"w\n", b"w\n"]
        assert [c for c in calls if c[0] == link._poke] == [(link._poke,)]
    finally:
        link._unhook()
        link._unhook_busy()
        link._loop = None


async def test_a_child_with_a_wake_up_is_told_of_later_commits_once_when_it_sleeps() -> None:
    link = processing_process.ProcessingProcess()
    writer = Writer()
    try:
        link._loop, link._writer = asyncio.get_running_loop(), writer  # type: ignore[assignment]
        link._wake_child()  # a new child: it looks for pending events at once
        assert writer.written == [b"w\n"]
        for _ in range(3):  # commits before it sleeps again: no wake-up each
            wakeup.notify()
            await asyncio.sleep(0)
        assert writer.written == [b"w\n"]
        link._child_sleeps()  # it missed them: woken at once, to sweep again
        assert writer.written == [b"w\n", b"w\n"]
        link._child_sleeps()  # nothing missed this time: it sleeps ...
        assert writer.written == [b"w\n", b"w\n"]
        wakeup.notify()  # ... until the next commit, which wakes it, once
        await asyncio.sleep(0)
        assert writer.written == [b"w\n"] * 3
        wakeup.notify()  # (it works: told when it next sleeps)
        await asyncio.sleep(0)
        assert writer.written == [b"w\n"] * 3
    finally:
        link._unhook()
        link._unhook_busy()
        link._loop = None


async def test_the_sleep_hook_runs_only_when_a_waiter_sleeps() -> None:
    slept: list[int] = []
    remove = wakeup.before_sleep(lambda: slept.append(1))
    try:
        seen = wakeup.generation()
        wakeup.notify()
        assert await wakeup.wait(5.0, seen) is True  # a wake-up was there: no sleep
        assert slept == []
        waiting = asyncio.create_task(wakeup.wait(5.0, wakeup.generation()))
        await asyncio.sleep(0)
        assert slept == [1]
        wakeup.notify()
        assert await asyncio.wait_for(waiting, 1.0) is True
        assert await wakeup.wait(0.01) is False  # a timeout: it slept
        assert slept == [1, 1]
    finally:
        remove()
    await wakeup.wait(0.01)
    assert slept == [1, 1]
