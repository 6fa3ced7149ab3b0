"""SQLite for asyncio with one trip to the database thread per statement.

SQLAlchemy's ``aiosqlite`` adapter runs every statement as four trips between the event loop
and aiosqlite's thread: open a cursor, execute, fetch the rows, close the cursor. Each trip is
a queue hand-off, a thread wake-up, a GIL hand-over and a wake-up of the loop through its
self-pipe; on a busy 2-core machine the trips cost more than SQLite's own work for the small
statements the hot paths run (bench/results/intake-2026-12-03b.md). This adapter does the four
steps in one function on aiosqlite's thread: same driver, same connection, same SQL, same
errors (raised by ``sqlite3`` in that thread and mapped by SQLAlchemy as before); only the
cursor's results (rows, ``description``, ``rowcount``, ``lastrowid``) come back at once.

Server-side cursors (streaming results) keep SQLAlchemy's own adapter. Used by
:func:`connectx.db.engine.make_engine` as the engine's DBAPI module (``module=``).

Two more trips are saved: the pool's rollback of a connection handed back with no transaction
open (after every commit) is skipped (``sqlite3`` does nothing then anyway), and
:func:`commit_many` runs a whole write transaction (``BEGIN IMMEDIATE``, a few multi-row INSERTs,
``COMMIT``) in one trip, for intake's group commit.
"""

from __future__ import annotations

import collections
import functools
import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

Result = tuple[Any, int, int | None, list[Any] | None]


def _run(conn: sqlite3.Connection, many: bool, operation: str, parameters: Any) -> Result:
    """On aiosqlite's thread: the whole life of a cursor."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no cursor is opened ahead
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1  # sqlite3's default (rows are fetched whole anyway)

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        return

    async def _trip(self, many: bool, operation: Any, parameters: Any) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            result: Result = await connection._execute(
                _run,
                connection._conn,
                many,
                operation,
                parameters,
            )
        self._description, self._rowcount, self._lastrowid, rows = result
        self._rows = collections.deque(rows or ())

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(False, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._trip(True, operation, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        return  # the cursor was closed on the database thread already

    def close(self) -> None:
        self._rows.clear()


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def rollback(self) -> None:
        # The pool rolls back every connection handed back to it; with no transaction open
        # (the usual case, after a COMMIT) sqlite3 would do nothing: skip the trip.
        conn = self._connection._connection
        if conn is not None and not conn.in_transaction:
            return
        super().rollback()


@functools.lru_cache(maxsize=64)
def _rows_sql(operation: str, rows: int) -> str:
    """``operation`` (``INSERT … VALUES (?, …)``) inserting ``rows`` rows in one statement."""
    head, values, group = operation.rpartition(" VALUES ")
    if not values:
        raise ValueError("commit_many needs an INSERT … VALUES (…) statement")
    return head + values + ", ".join([group] * rows)


def _chunks(conn: sqlite3.Connection, columns: int, count: int) -> list[int]:
    """Row counts of the multi-row statements inserting ``count`` rows: powers of two (so a
    handful of statements stay in ``sqlite3``'s cache whatever the group's size), each within
    SQLite's limit on bound variables."""
    most = max(1, min(256, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // columns))
    sizes = []
    while count:
        size = 1 << (min(count, most).bit_length() - 1)
        sizes.append(size)
        count -= size
    return sizes


def _commit_many(conn: sqlite3.Connection, operation: str, parameters: Sequence[Any]) -> None:
    """On aiosqlite's thread: one write transaction, committed (fsync'ed under
    ``synchronous=FULL``) or rolled back.

    The rows go in as a few multi-row INSERTs, not an executemany: ``sqlite3`` lets go of the
    GIL around every step of a statement, and taking it back from the event loop's thread
    cost that thread a wait per row (a group of 128 rows was 128 hand-overs, ~12 % of the
    loop's time at full intake, session 12)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = 0
        columns = len(parameters[0]) if parameters else 0
        for size in _chunks(conn, columns, len(parameters)) if columns else ():
            flat = list(itertools.chain.from_iterable(parameters[done : done + size]))
            conn.execute(_rows_sql(operation, size), flat)
            done += size
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


async def commit_many(driver_connection: Any, operation: str, parameters: Sequence[Any]) -> None:
    """Insert ``parameters`` with ``operation`` and commit, in one trip to the database thread
    (not four: BEGIN, the statement, COMMIT, the pool's rollback). ``driver_connection`` is the
    aiosqlite connection of a pooled connection the caller has checked out."""
    connection: aiosqlite.Connection = driver_connection
    await connection._execute(_commit_many, connection._conn, operation, parameters)


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's adapter does
        return OneTripConnection(self, await_(connection))


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
