"""SQLite: raw webhook events in a file of their own, apart from the data file.

On SQLite a database has one write lock. Intake's group commit (``webhook_events`` rows,
committed before Meta gets its 200) and webhook processing (contacts, conversations, messages:
~40 ms holding the lock per 200-event transaction) used to share it, so a POST waited out the
processor's turns (bench/results/intake-2026-12-04.md). Now the raw events live in
``<data file's stem>-events.db`` beside the data file (``connectx.db`` →
``connectx-events.db``), with the same ``webhook_events`` table:

* **Intake and marking done write the events file through an engine of its own**
  (:func:`engine`, :func:`session`): ``BEGIN IMMEDIATE`` there takes only the events file's
  lock, which the processor holds for a millisecond or two to mark a batch done, never while it
  writes messages.
* **Every connection to the data file attaches the events file** (``ATTACH … AS events``), so
  everything that reads or edits raw events through the ordinary session (claims, retention,
  erasure and re-sealing of raw bodies, the data inventory, ``connectx webhooks``, tests) finds
  ``webhook_events`` by its plain name: the data file has no table of that name, and SQLite
  looks up unqualified names in the attached databases after ``main``. Such a transaction
  begins with ``BEGIN`` and a write that changes nothing on ``main`` (instead of
  ``BEGIN IMMEDIATE``, which would take the write lock of every attached file), so it holds the
  data file's lock from the start, and the events file's only from its first write to
  ``webhook_events`` (if any) to its commit.
* **Not atomic across the two files** (WAL mode): the processor commits the effects in the data
  file, then marks the events done in the events file. A crash between the two leaves them
  pending and they are processed again, which changes nothing (the unique constraints of
  docs/whatsapp-inbound.md, "Idempotence"): an event is never marked done before its effects
  are committed.

The events file's schema is created here, not by Alembic (Alembic migrates the data file): the
table of :class:`connectx.models.webhook_event.WebhookEvent` without its foreign key (a key
cannot name a table of another file), its indexes, and ``PRAGMA user_version`` =
:data:`SCHEMA_VERSION`. A change to the table is a new version, applied by :func:`ensure_schema`
(and, for the data file, an Alembic migration that leaves ``webhook_events`` alone on SQLite).
Migration 0007r moved the rows of an existing data file here. PostgreSQL is unchanged: one
database, ``webhook_events`` in it, claims and marking done in the processing transaction.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Column, Index, MetaData, Table
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.schema import CreateIndex, CreateTable

from connectx.config import async_url, get_settings

ALIAS = "events"  # the schema name of the attached events file on data-file connections
SUFFIX = "-events.db"
SCHEMA_VERSION = 2
# Indexes of earlier versions, dropped when a file is brought up to date (version 2: the full
# (status, id) index became the partial index of pending events, models/webhook_event.py).
_DROPPED = ("ix_webhook_events_status_id",)
# A write to ``main`` that changes nothing: it takes the data file's write lock (as
# BEGIN IMMEDIATE did) without taking the attached events file's.
LOCK_MAIN = "UPDATE main.alembic_version SET version_num = version_num WHERE 0"

_ready: set[str] = set()
_ready_lock = threading.Lock()


def file_of(url: str) -> str | None:
    """The absolute path of a SQLite file URL (None: not SQLite, or in memory)."""
    url = async_url(url)
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def path_for(data_path: str) -> str:
    """The events file beside a data file: ``<dir>/<stem>-events.db``."""
    stem, _ = os.path.splitext(data_path)
    return f"{stem}{SUFFIX}"


def is_events_file(path: str) -> bool:
    return path.endswith(SUFFIX)


_path: tuple[Any, str | None] | None = None  # the settings it was worked out from, the path


def path() -> str | None:
    """The configured data file's events file (None: PostgreSQL, or SQLite in memory); worked
    out once per settings object."""
    global _path
    settings = get_settings()
    if _path is not None and _path[0] is settings:
        return _path[1]
    data = file_of(settings.effective_database_url)
    found = path_for(data) if data is not None else None
    _path = (settings, found)
    return found


def split() -> bool:
    """Whether raw webhook events live in a file of their own (SQLite on a file)."""
    return path() is not None


def url() -> str:
    where = path()
    if where is None:
        raise RuntimeError("raw webhook events have no file of their own on this database")
    return f"sqlite+aiosqlite:///{where}"


@functools.cache
def _ddl() -> list[str]:
    """The events file's schema in SQLite's SQL (the model's table without foreign keys), as
    statements that bring a file of any earlier version up to date (and change nothing when
    run again)."""
    from connectx.models.webhook_event import WebhookEvent

    model: Table = WebhookEvent.__table__  # type: ignore[assignment]
    table = Table(
        model.name,
        MetaData(),
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in model.columns
        ),
    )
    indexes = [
        Index(
            ix.name,
            *(table.c[col.name] for col in ix.columns),
            unique=bool(ix.unique),
            sqlite_where=ix.dialect_options["sqlite"]["where"],
        )
        for ix in sorted(model.indexes, key=lambda ix: str(ix.name))
    ]
    dialect = sqlite_dialect.dialect()
    return (
        [str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)).strip()]
        + [f"DROP INDEX IF EXISTS {name}" for name in _DROPPED]
        + [
            str(CreateIndex(ix, if_not_exists=True).compile(dialect=dialect)).strip()
            for ix in indexes
        ]
    )


def ensure_schema(events_path: str) -> None:
    """Create (or bring up to date) the events file's schema; once per process and file. Plain
    ``sqlite3``, synchronous: it runs where a connection is made, before anything uses it."""
    if events_path in _ready:
        return
    with _ready_lock:
        if events_path in _ready:
            return
        os.makedirs(os.path.dirname(events_path) or ".", exist_ok=True)
        conn = sqlite3.connect(events_path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _ddl():
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            elif version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{events_path} has schema version {version}, newer than this ConnectX "
                    f"({SCHEMA_VERSION})"
                )
        finally:
            conn.close()
        _ready.add(events_path)


def forget_schema() -> None:
    """Forget which files were checked (a restore replaced them)."""
    _ready.clear()


def attach(dbapi_conn: Any, data_path: str) -> bool:
    """On a new connection to a migrated data file: attach its events file (created if
    missing). Returns whether it did (a data file Alembic has not touched yet is left alone)."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' "
            "AND name IN ('alembic_version', 'webhook_events')"
        )
        tables = {name for (name,) in cursor.fetchall()}
        # Only a migrated data file without a webhook_events of its own (migration 0007r moved
        # them): before that, the data file's table is the one in use.
        if tables != {"alembic_version"}:
            return False
        events_path = path_for(data_path)
        ensure_schema(events_path)
        cursor.execute(f"ATTACH DATABASE ? AS {ALIAS}", (events_path,))
        cursor.execute(f"PRAGMA {ALIAS}.journal_mode=WAL")
        cursor.execute(f"PRAGMA {ALIAS}.synchronous=FULL")
        return True
    finally:
        cursor.close()


def engine() -> AsyncEngine:
    """This loop's engine for the events file (no data file attached to it)."""
    from connectx.db.engine import get_engine

    events_url = url()
    where = path()
    assert where is not None
    ensure_schema(where)
    return get_engine(events_url)


@asynccontextmanager
async def session() -> AsyncIterator[AsyncSession]:
    """A short write transaction on the events file alone (``BEGIN IMMEDIATE`` there): commits
    on success, rolls back on error."""
    async with AsyncSession(engine(), expire_on_commit=False) as db, db.begin():
        yield db
