"""Turns at SQLite's single write lock between intake and the webhook processor.

On SQLite a processing transaction holds the database's only write lock (``BEGIN IMMEDIATE``)
from its claim to its commit. A group commit of webhook events that arrives meanwhile used to
wait inside SQLite's busy handler, which sleeps in growing steps (1, 2, 5, 10 … 100 ms) and so
kept a POST waiting well past the processor's commit. Intake and processors now take turns:

* within one event loop (a processor task in the web server's loop) through an
  ``asyncio.Lock``;
* across processes (``connectx serve`` and its processing process, docs/whatsapp-inbound.md)
  through two ``flock`` files next to the database: ``<db>-turn.lock``, held exclusively around
  every group commit and processing transaction, and ``<db>-want.lock``, held shared by intake
  while it waits for its turn. A processor checks the second (a non-blocking probe, two system
  calls) between updates: when intake waits, it commits what it has done and lets the group
  commit in (its events continue from ``webhook_events.progress`` next time), and it starts its
  next transaction only once no intake waits. A process that dies releases its locks.

A wait for a lock file held by another process blocks in ``flock`` on a thread of the waiter's
own (the kernel wakes it the moment the holder lets go) instead of polling: polling every
0.5 ms cost the web process about as much CPU as the POSTs themselves while a processing
process held the turn (bench/results/intake-2026-12-03d.md). The non-blocking attempt comes
first, so an uncontended turn costs no thread hand-off.

Only SQLite needs this (on PostgreSQL intake's inserts never wait for the processor's rows), and
it orders only these two: other writers keep SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import make_url

from connectx.config import get_settings
from connectx.db import events_file


class _Files:
    """The cross-process side: three open file descriptions of the two lock files."""

    def __init__(self, db_path: str) -> None:
        self.path = db_path
        self.turn = os.open(f"{db_path}-turn.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.want = os.open(f"{db_path}-want.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.probe = os.open(f"{db_path}-want.lock", os.O_RDWR)
        self.wanting = 0
        # Blocking waits for another process's lock happen here (one at a time per loop: the
        # loop's asyncio.Lock is taken first).
        self.waiter = ThreadPoolExecutor(1, thread_name_prefix="sqlite-turn")

    def close(self) -> None:
        self.waiter.shutdown(wait=False)
        for fd in (self.turn, self.want, self.probe):
            with contextlib.suppress(OSError):
                os.close(fd)

    def try_turn(self) -> bool:
        try:
            fcntl.flock(self.turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def end_turn(self) -> None:
        fcntl.flock(self.turn, fcntl.LOCK_UN)

    async def take_turn(self) -> None:
        """The turn, waiting for another process's in a thread blocked in ``flock``."""
        if self.try_turn():
            return
        await self._blocking(fcntl.flock, self.turn, fcntl.LOCK_EX, release=self.end_turn)

    async def until_nobody_wants(self) -> None:
        """Return once no intake waits for its turn (an exclusive lock on the want file is
        granted only when no intake holds it shared; taken and let go at once)."""
        if not self.someone_wants():
            return
        await self._blocking(self._want_clear)

    def _want_clear(self) -> None:
        fcntl.flock(self.probe, fcntl.LOCK_EX)
        fcntl.flock(self.probe, fcntl.LOCK_UN)

    async def _blocking(self, fn: Any, *args: Any, release: Any = None) -> None:
        done = asyncio.get_running_loop().run_in_executor(self.waiter, fn, *args)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            # The thread cannot be interrupted: what it acquires later is let go at once.
            if release is not None:
                done.add_done_callback(
                    lambda f: release() if not f.cancelled() and f.exception() is None else None
                )
            raise

    def want_on(self) -> None:
        self.wanting += 1
        if self.wanting == 1:
            fcntl.flock(self.want, fcntl.LOCK_SH)  # only ever blocks for a probe's instant

    def want_off(self) -> None:
        self.wanting -= 1
        if self.wanting == 0:
            fcntl.flock(self.want, fcntl.LOCK_UN)

    def someone_wants(self) -> bool:
        """Whether an intake (of any process, this one included) waits for its turn."""
        try:
            fcntl.flock(self.probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self.probe, fcntl.LOCK_UN)
        return False


class _Turns:
    def __init__(self, files: _Files | None, apart: bool = False) -> None:
        self.lock = asyncio.Lock()
        self.intake_waiting = 0
        self.files = files
        self.apart = apart  # raw events in a file of their own

    def __del__(self) -> None:
        if self.files is not None:
            self.files.close()


# Per event loop; None where the database is not SQLite (decided once per loop).
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns | None] = (
    weakref.WeakKeyDictionary()
)


def _sqlite_path() -> str | None:
    """The file whose write lock intake and processors take turns at: the events file when raw
    events have one (db/events_file.py), which is always the case on a SQLite file."""
    settings = get_settings()
    if not settings.is_sqlite:
        return None
    events = events_file.path()
    if events is not None:
        return events
    database = make_url(settings.effective_database_url).database
    if not database or database == ":memory:":
        return None
    return os.path.abspath(database)


def _for_loop() -> _Turns | None:
    loop = asyncio.get_running_loop()
    try:
        return _turns[loop]
    except KeyError:
        if not get_settings().is_sqlite:
            _turns[loop] = None
            return None
        path = _sqlite_path()
        found = _turns[loop] = _Turns(_Files(path) if path else None, events_file.split())
        return found


@asynccontextmanager
async def intake_turn() -> AsyncIterator[None]:
    """Held around a group commit (first in line: processors yield to it)."""
    turns = _for_loop()
    if turns is None:
        yield
        return
    files = turns.files
    turns.intake_waiting += 1
    if files is not None:
        files.want_on()
    try:
        await turns.lock.acquire()
        try:
            if files is not None:
                await files.take_turn()
        except BaseException:
            turns.lock.release()
            raise
    finally:
        turns.intake_waiting -= 1
        if files is not None:
            files.want_off()
    try:
        yield
    finally:
        if files is not None:
            files.end_turn()
        turns.lock.release()


@asynccontextmanager
async def processor_turn() -> AsyncIterator[None]:
    """Held around a processing transaction (after any waiting intake has had its turn)."""
    turns = _for_loop()
    if turns is None:
        yield
        return
    files = turns.files
    while True:
        # An intake of this loop is waited for in the lock's queue (first come, first served,
        # as before the lock files); one of another process through its want file.
        if files is not None and turns.intake_waiting == 0:
            await files.until_nobody_wants()
        await turns.lock.acquire()
        if files is None or files.try_turn():
            break
        turns.lock.release()
        if files.someone_wants():
            continue  # an intake is next: it waits for the same turn
        # Another processor (of another process) holds it: wait for it, then give it back
        # and go round again, so an intake that came meanwhile goes first.
        await files.take_turn()
        files.end_turn()
    try:
        yield
    finally:
        if files is not None:
            files.end_turn()
        turns.lock.release()


def shares_write_lock() -> bool:
    """Whether a processing transaction holds the write lock intake's group commits take:
    SQLite with the raw events in the data file (a database without a file). Not on a SQLite
    file (the events file is apart, db/events_file.py) nor on PostgreSQL."""
    return get_settings().is_sqlite and not events_file.split()


def intake_waiting() -> bool:
    """Whether a group commit (of this loop, or of another process) waits for the processor's
    transaction to end. Never, when raw events have a file of their own: the processing
    transaction does not hold the lock intake takes (only marking done does, in a turn)."""
    turns = _for_loop()
    if turns is None or turns.apart:
        return False
    if turns.intake_waiting > 0:
        return True
    return turns.files is not None and turns.files.someone_wants()
