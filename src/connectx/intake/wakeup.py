"""Wake the processors of this process when intake has committed new events.

A wake-up is only a hint: processors also sweep on a short interval, so a lost wake-up (or one
meant for another process) delays an event by at most that interval. Safe across threads and
event loops: the web server's loop notifies; a processor may wait on another loop. A generation
counter closes the gap between a processor finding nothing and starting to wait. A waiter on the
notifying thread's own loop is woken directly (``call_soon_threadsafe`` writes to the loop's
self-pipe, a system call per wake-up, needed only from another thread). Hooks added with
:func:`also_notify` carry the hint further (to ``connectx serve``'s processing process,
:mod:`connectx.intake.process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

_lock = threading.Lock()
_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
_generation = 0
_hooks: list[Callable[[], None]] = []
_sleep_hooks: list[Callable[[], None]] = []


def also_notify(hook: Callable[[], None]) -> Callable[[], None]:
    """Call ``hook`` (cheap, never raising) on every :func:`notify`; returns a remover."""
    _hooks.append(hook)
    return lambda: _hooks.remove(hook) if hook in _hooks else None


def before_sleep(hook: Callable[[], None]) -> Callable[[], None]:
    """Call ``hook`` (cheap, never raising; on the waiter's thread) each time :func:`wait`
    goes to sleep, not when a wake-up is already there; returns a remover. (The processing
    process tells the web process it waits: only then is a wake-up sent to it.)"""
    _sleep_hooks.append(hook)
    return lambda: _sleep_hooks.remove(hook) if hook in _sleep_hooks else None


def generation() -> int:
    return _generation


def notify() -> None:
    global _generation
    with _lock:
        _generation += 1
        waiters = list(_waiters)
    for hook in list(_hooks):
        hook()
    if not waiters:
        return
    here = running_loop()
    for loop, event in waiters:
        if loop is here:  # this thread's own loop: no self-pipe write to wake it
            event.set()
            continue
        with contextlib.suppress(RuntimeError):  # that loop has closed
            loop.call_soon_threadsafe(event.set)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def wait(timeout_s: float, seen: int | None = None) -> bool:
    """Sleep until notified (or already notified since generation ``seen``) or ``timeout_s``
    passes. True when notified."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()
    with _lock:
        if seen is not None and seen != _generation:
            return True
        _waiters.append((loop, event))
    try:
        for hook in list(_sleep_hooks):
            hook()
        async with asyncio.timeout(timeout_s):
            await event.wait()
        return True
    except TimeoutError:
        return False
    finally:
        with _lock:
            _waiters.remove((loop, event))
