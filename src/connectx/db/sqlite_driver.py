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
:func:`commit_made` runs a whole write transaction (one multi-row INSERT, a transaction of its
own) in one trip, for intake's group commit.
"""

from __future__ import annotations

import collections
import functools
import itertools
import sqlite3
from collections.abc import Callable, Sequence
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


STEP = 32  # padded statement sizes: powers of two up to it, then its multiples


def padded_size(rows: int) -> int:
    """The row count of the statement that inserts ``rows`` rows: the next power of two up to
    :data:`STEP`, then the next multiple of it (a group of up to 256 rows is one of 13
    statement shapes, each prepared once and kept in ``sqlite3``'s cache; preparing one of
    ~120 rows took ~0.6 ms, so a shape per exact count would be prepared again and again)."""
    if rows <= STEP:
        return 1 << (rows - 1).bit_length()
    return -(-rows // STEP) * STEP


@functools.lru_cache(maxsize=64)
def _rows_sql(head: str, width: int, rows: int) -> str:
    """``head`` (``INSERT INTO t (…) SELECT <expressions of column1…N>``) over a VALUES list of
    ``rows`` rows of ``width`` placeholders; rows whose first value is NULL (the padding) are
    left out."""
    group = "(" + ", ".join(["?"] * width) + ")"
    return f"{head} FROM (VALUES {', '.join([group] * rows)}) WHERE column1 IS NOT NULL"


def _commit_many(conn: sqlite3.Connection, head: str, parameters: Sequence[Any]) -> None:
    """On aiosqlite's thread: the rows inserted and committed (fsync'ed under
    ``synchronous=FULL``), or nothing.

    One statement, outside any transaction: SQLite makes it a transaction of its own, which
    takes the write lock when the statement starts (as ``BEGIN IMMEDIATE`` did) and commits when
    it ends, atomically. ``sqlite3`` lets go of the GIL around every step of every statement,
    and each time the database thread takes it back from the busy event loop it waits (up to
    the switch interval, then the loop waits in turn): ``BEGIN IMMEDIATE``, a few multi-row
    INSERTs and ``COMMIT`` were a dozen such hand-overs a group (session 17, one statement and
    four bound values a row: +5-12 % batch-50 POSTs/s in alternating pairs). Only a group
    larger than SQLite's limit on bound variables allows in one statement is split, inside
    ``BEGIN IMMEDIATE`` / ``COMMIT``."""
    if not parameters:
        return
    if conn.in_transaction:
        raise sqlite3.OperationalError("commit_made needs a connection with no open transaction")
    width = len(parameters[0])
    most = max(1, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    if len(parameters) <= most:
        conn.execute(*_statement(head, width, parameters, most))
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for start in range(0, len(parameters), most):
            conn.execute(*_statement(head, width, parameters[start : start + most], most))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _statement(head: str, width: int, rows: Sequence[Any], most: int) -> tuple[str, list[Any]]:
    """The SQL and parameters inserting ``rows`` (padded with NULL rows to its size)."""
    size = min(padded_size(len(rows)), most)
    flat = list(itertools.chain.from_iterable(rows))
    flat += [None] * (width * (size - len(rows)))
    return _rows_sql(head, width, size), flat


async def commit_made(driver_connection: Any, head: str, make: Callable[[], Sequence[Any]]) -> None:
    """Insert the rows ``make()`` returns (tuples, their first value never NULL) with ``head``
    (an ``INSERT INTO t (…) SELECT …`` over ``column1``… of a VALUES list, which this adds) and
    commit, in one trip to the database thread, where ``make`` runs too (work in it that lets go
    of the GIL runs there beside the event loop). ``driver_connection`` is the aiosqlite
    connection of a pooled connection the caller has checked out."""
    connection: aiosqlite.Connection = driver_connection
    conn = connection._conn
    await connection._execute(lambda: _commit_many(conn, head, make()))


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's adapter does
        return OneTripConnection(self, await_(connection))


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
