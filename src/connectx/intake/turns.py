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
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

from connectx.config import get_settings

INTAKE_POLL_S = 0.0005  # intake retries a busy turn this often (the processor yields at once)
PROCESSOR_POLL_S = 0.001  # a processor waiting for intake retries this often


class _Files:
    """The cross-process side: three open file descriptions of the two lock files."""

    def __init__(self, db_path: str) -> None:
        self.path = db_path
        self.turn = os.open(f"{db_path}-turn.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.want = os.open(f"{db_path}-want.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self.probe = os.open(f"{db_path}-want.lock", os.O_RDWR)
        self.wanting = 0

    def close(self) -> None:
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
    def __init__(self, files: _Files | None) -> None:
        self.lock = asyncio.Lock()
        self.intake_waiting = 0
        self.files = files

    def __del__(self) -> None:
        if self.files is not None:
            self.files.close()


# Per event loop; None where the database is not SQLite (decided once per loop).
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns | None] = (
    weakref.WeakKeyDictionary()
)


def _sqlite_path() -> str | None:
    settings = get_settings()
    if not settings.is_sqlite:
        return None
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
        found = _turns[loop] = _Turns(_Files(path) if path else None)
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
            # Polled: the holder is another process (a lock file has no event to wait on).
            while files is not None and not files.try_turn():  # noqa: ASYNC110
                await asyncio.sleep(INTAKE_POLL_S)
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
        # as before the lock files); one of another process by polling its want file.
        while files is not None and turns.intake_waiting == 0 and files.someone_wants():  # noqa: ASYNC110
            await asyncio.sleep(PROCESSOR_POLL_S)
        await turns.lock.acquire()
        if files is None or files.try_turn():
            break
        turns.lock.release()
        await asyncio.sleep(PROCESSOR_POLL_S)
    try:
        yield
    finally:
        if files is not None:
            files.end_turn()
        turns.lock.release()


def intake_waiting() -> bool:
    """Whether a group commit (of this loop, or of another process) waits for the processor's
    transaction to end."""
    turns = _for_loop()
    if turns is None:
        return False
    if turns.intake_waiting > 0:
        return True
    return turns.files is not None and turns.files.someone_wants()
