"""Wake this process's pacer when a send commits (other processes find rows by polling)."""

from __future__ import annotations

import threading

_event = threading.Event()


def notify() -> None:
    _event.set()


async def notify_async() -> None:
    _event.set()


def wait(timeout_s: float) -> bool:
    """Block until notified or ``timeout_s`` passes (call from a worker thread)."""
    woke = _event.wait(timeout_s)
    _event.clear()
    return woke
