"""Async engines: SQLite (WAL) for the embedded default, PostgreSQL (asyncpg) when configured.

An async engine's pooled connections belong to the event loop that opened them, so one engine is
kept per running loop (the web server's loop and the background-task loop each get their own).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from connectx.config import async_url, get_settings
from connectx.db import events_file, sqlite_driver

_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncEngine]] = (
    weakref.WeakKeyDictionary()
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see make_engine)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: in WAL mode every COMMIT syncs the log, so a committed transaction survives a power
    # loss (NORMAL may lose the last ones). Intake answers Meta's 200 only after its COMMIT:
    # that promise needs FULL. Cost: one fsync per commit (~1 ms here), shared by a whole group
    # commit of webhooks and by a whole processing batch (docs/architecture.md).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


READ_ONLY = "connectx_read_only"  # execution option: a read-only unit of work (db.session)


EVENTS_ATTACHED = "connectx_events_attached"  # connection record info: the events file is


def _begin_immediate(conn: Any) -> None:
    # A read-only unit of work begins DEFERRED: in WAL mode it reads a snapshot and never takes
    # the write lock, so it neither waits for writers nor makes them wait.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    elif conn.connection.info.get(EVENTS_ATTACHED):
        # BEGIN IMMEDIATE would take the attached events file's write lock too, for the whole
        # transaction: intake's group commits would wait for every writer of the data file.
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql(events_file.LOCK_MAIN)
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _attacher(data_path: str) -> Any:
    """Connection events of a data file's engine: attach its events file (db/events_file.py) to
    every connection once the data file is migrated (tried again at each transaction's start
    until then: a connection opened before ``connectx migrate`` must not miss the table)."""

    def on_connect(dbapi_conn: Any, record: Any) -> None:
        record.info[EVENTS_ATTACHED] = events_file.attach(dbapi_conn, data_path)

    def on_begin(conn: Any) -> None:
        info = conn.connection.info
        if not info.get(EVENTS_ATTACHED):
            info[EVENTS_ATTACHED] = events_file.attach(conn.connection.dbapi_connection, data_path)

    return on_connect, on_begin


def make_engine(url: str | None = None) -> AsyncEngine:
    settings = get_settings()
    # A URL passed in (``connectx.db.migrate.upgrade(url)``, the key store's) gets the same
    # drivers as the configured one: a plain ``postgresql://`` would make SQLAlchemy pick psycopg.
    url = async_url(url or settings.effective_database_url)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            poolclass=NullPool if ":memory:" in url else None,
            hide_parameters=True,
            # one trip to aiosqlite's thread per statement instead of four (db/sqlite_driver)
            module=sqlite_driver.dbapi() if "+aiosqlite" in url else None,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        data_path = events_file.file_of(url)
        if (
            data_path is not None
            and not events_file.is_events_file(data_path)
            and data_path != events_file.file_of(settings.effective_keystore_url)
        ):
            on_connect, on_begin = _attacher(data_path)
            event.listen(engine.sync_engine, "connect", on_connect)
            event.listen(engine.sync_engine, "begin", on_begin)
        # Writers take the lock at BEGIN so concurrent transactions queue instead of failing
        # with "database is locked" when they upgrade from read to write.
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    # hide_parameters: a database error's message (logged, sometimes shown) never carries the
    # bound values, which can be tokens, hashes or sealed personal data (house rule 8).
    engine = create_async_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)
    event.listen(engine.sync_engine, "checkout", _closed_by_server)
    return engine


def _closed_by_server(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Replace a pooled PostgreSQL connection the server has closed (a restart, an idle
    timeout, ``pg_terminate_backend``) before it is handed out. asyncpg notices the closed
    socket while the connection waits in the pool, so this needs no round trip; SQLAlchemy's
    ``pool_pre_ping`` sent one (``SELECT 1``) per unit of work, two per inbox page. A server
    that vanished without closing the socket is still found by the first statement, which
    then invalidates the whole pool (as a failed ping would have for one connection)."""
    driver = getattr(dbapi_conn, "_connection", None)
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def get_engine(url: str | None = None) -> AsyncEngine:
    """This loop's engine for ``url`` (default: the configured database; the key store passes
    its own URL, which on PostgreSQL is usually the same database and so the same pool)."""
    loop = asyncio.get_running_loop()
    url = url or get_settings().effective_database_url
    per_loop = _engines.get(loop)
    if per_loop is None:
        per_loop = _engines[loop] = {}
    engine = per_loop.get(url)
    if engine is None:
        engine = per_loop[url] = make_engine(url)
    return engine


async def dispose_engines() -> None:
    loop = asyncio.get_running_loop()
    for engine in _engines.pop(loop, {}).values():
        await engine.dispose()
