"""Turns at SQLite's single write lock between intake and the processor of one event loop.

On SQLite a processing transaction holds the database's only write lock (``BEGIN IMMEDIATE``)
from its claim to its commit. A group commit of webhook events that arrives meanwhile used to
wait inside SQLite's busy handler, which sleeps in growing steps (1, 2, 5, 10 … 100 ms) and so
kept a POST waiting well past the processor's commit. Within one event loop (embedded mode:
intake and the processor share the web server's loop) both now take turns through an
``asyncio.Lock``: the waiting side is woken the moment the lock is free, and the processor,
which checks :func:`intake_waiting` between updates, commits what it has done and lets the
group commit in (its events continue from ``webhook_events.progress`` next time).

Only SQLite needs this (on PostgreSQL intake's inserts never wait for the processor's rows), and
it orders only these two: other writers keep SQLite's busy handler. Processes never share a
turn: a ``connectx worker`` on SQLite has no intake in its loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from connectx.config import get_settings


class _Turns:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.intake_waiting = 0


# Per event loop; None where the database is not SQLite (decided once per loop).
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns | None] = (
    weakref.WeakKeyDictionary()
)


def _for_loop() -> _Turns | None:
    loop = asyncio.get_running_loop()
    try:
        return _turns[loop]
    except KeyError:
        found = _turns[loop] = _Turns() if get_settings().is_sqlite else None
        return found


@asynccontextmanager
async def intake_turn() -> AsyncIterator[None]:
    """Held around a group commit (first in line: the processor yields to it)."""
    turns = _for_loop()
    if turns is None:
        yield
        return
    turns.intake_waiting += 1
    try:
        await turns.lock.acquire()
    finally:
        turns.intake_waiting -= 1
    try:
        yield
    finally:
        turns.lock.release()


@asynccontextmanager
async def processor_turn() -> AsyncIterator[None]:
    """Held around a processing transaction."""
    turns = _for_loop()
    if turns is None:
        yield
        return
    async with turns.lock:
        yield


def intake_waiting() -> bool:
    """Whether a group commit of this loop waits for the processor's transaction to end."""
    turns = _for_loop()
    return turns is not None and turns.intake_waiting > 0
