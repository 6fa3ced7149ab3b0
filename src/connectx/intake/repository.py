"""SQL for raw webhook events."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from connectx.db import events_file, sqlite_driver
from connectx.db.base import sqlite_text
from connectx.db.engine import get_engine
from connectx.intake import raw_body
from connectx.kit import arrays, clock
from connectx.models.config_generation import PROCESSING, ConfigGeneration
from connectx.models.security import WorkspaceSuspension
from connectx.models.webhook_event import FAILED, PENDING, WebhookEvent, pending_only

# A raw event just received, as intake writes it: when it came (POSIX microseconds, UTC:
# clock.micros), from which Meta app, its sealed body and the body's size (the columns of
# _BOUND, in that order, with their PostgreSQL array types and what each element becomes).
# Everything else of its row is the same for every new event (_CONSTANT).
NewEvent = tuple[int, int | None, bytes, int]
# Makes a group's events, compressing and sealing their bodies (no await: on any thread).
Making = Callable[[], list[NewEvent]]
_BOUND = {
    "received_at": ("bigint", "'epoch'::timestamptz + {} * interval '1 microsecond'"),
    "meta_app_id": ("bigint", "{}"),
    "body_enc": ("bytea", "{}"),
    "body_size": ("integer", "{}"),
}
_CONSTANT: dict[str, object] = {
    "source": "whatsapp",
    "status": PENDING,
    "attempts": 0,
    "progress": 0,
    "items": 0,
    "unrouted": 0,
    "ignored": 0,
}


def new_row(event: NewEvent) -> dict[str, object]:
    """The whole ``webhook_events`` row of a raw event just received."""
    at, *rest = event
    return {**dict(zip(_BOUND, (clock.from_micros(at), *rest), strict=True)), **_CONSTANT}


def writer_engine() -> AsyncEngine:
    """The engine new raw events are written with: on SQLite the events file's own
    (db/events_file.py: its lock is never held by a processing transaction), on PostgreSQL the
    database's."""
    return events_file.engine() if events_file.split() else get_engine()


class NewEventWriter:
    """Writes group commits of new raw events on one pooled connection that it keeps checked out
    (the flusher's), at the driver level.

    Per group commit, checking a connection out of SQLAlchemy's pool (and finding the engine,
    whose default URL resolves the data directory's path) cost more of the web process than the
    rows themselves when groups are small, as they are at a steady rate; so the connection is
    kept, and given back (:meth:`close`) after any failure, when the flusher stops and at the
    app's shutdown. The rows go to the driver with the values SQLAlchemy would bind, built
    directly (tests/whatsapp/test_group_commit.py proves the stored values identical):

    * SQLite (our one-trip driver): one multi-row ``INSERT … SELECT … FROM (VALUES …)``, a
      transaction of its own, in one trip to the database thread
      (:func:`connectx.db.sqlite_driver.commit_made`); ``received_at`` formatted as
      SQLAlchemy's SQLite ``DATETIME`` stores it, without its bind processor (4 of the 6 µs it
      took to bind a row).
    * PostgreSQL (asyncpg): one ``INSERT … SELECT FROM unnest(…)`` of the whole group, the
      varying columns as arrays, run outside a transaction (one statement commits atomically):
      one round trip where ``BEGIN`` / executemany / ``COMMIT`` were three.
    * anything else: a Core executemany in a transaction on the kept connection.

    On SQLite and PostgreSQL only the four values that vary between new events are bound
    (:data:`_BOUND`); :data:`_CONSTANT` is written into the statement (:func:`_new_insert`).
    """

    def __init__(self) -> None:
        self._conn: AsyncConnection | None = None
        self._driver: Any = None
        self._kind = ""
        self._sql = ""
        self._zstd = raw_body.ZstdPacker()  # one group at a time: one thread at a time

    async def _connect(self) -> Any:
        engine = writer_engine()
        conn = await engine.connect()
        try:
            driver = (await conn.get_raw_connection()).driver_connection
        except BaseException:
            await conn.close()
            raise
        if isinstance(engine.dialect.dbapi, sqlite_driver.OneTripDBAPI):
            self._kind, self._sql = "sqlite", _new_insert(engine.dialect)
        elif engine.dialect.driver == "asyncpg":
            self._kind, self._sql = "asyncpg", _new_insert(engine.dialect)
        else:
            self._kind = "core"
        self._conn, self._driver = conn, driver
        return driver

    async def commit(self, events: list[NewEvent]) -> None:
        """Insert the new events and commit them, or raise with nothing stored."""
        await self.commit_made(lambda: events)

    async def thread_packer(self) -> raw_body.Packer | None:
        """The codec :meth:`commit_made` can run on the driver's thread (SQLite: Zstandard);
        None elsewhere (the loop compresses with LZ4)."""
        if self._conn is None:
            await self._connect()
        return self._zstd if self._kind == "sqlite" else None

    async def commit_made(self, make: Making) -> None:
        """Insert the events ``make()`` returns and commit them, or raise with nothing stored.
        On SQLite ``make`` runs on the driver's thread in the same trip as the insert: the
        bodies' compression (one call that lets go of the GIL for the whole group) and sealing
        happen beside the event loop instead of on it. Elsewhere ``make`` runs here (a trip to
        a thread of its own cost PostgreSQL more than the loop's LZ4: -9 % at batch 50 in
        alternating pairs)."""
        driver = self._driver if self._conn is not None else await self._connect()
        if self._kind == "asyncpg" and driver.is_closed():
            # The server closed it while it waited (a restart, pg_terminate_backend): replaced
            # before use, as the pool's checkout did (engine._closed_by_server), not a 503.
            await self.close()
            driver = await self._connect()
        try:
            if self._kind == "sqlite":
                await sqlite_driver.commit_made(
                    driver, self._sql, lambda: [_sqlite_row(e) for e in make()]
                )
            elif self._kind == "asyncpg":
                await driver.execute(self._sql, *_pg_columns(make()))
            else:
                assert self._conn is not None
                table: Table = WebhookEvent.__table__  # type: ignore[assignment]
                async with self._conn.begin():
                    await self._conn.execute(insert(table), [new_row(e) for e in make()])
        except BaseException:
            await self.close()  # a connection in an unknown state is not reused
            raise

    async def close(self) -> None:
        """Give the connection back to the pool (a new one is checked out when next needed)."""
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


async def commit_new(events: list[NewEvent], writer: NewEventWriter | None = None) -> None:
    """A group commit: insert new raw events and commit them, in a transaction of their own,
    with no ORM session, through ``writer`` (the flusher's: its connection stays checked out)
    or a writer of this call only."""
    if writer is not None:
        await writer.commit(events)
        return
    once = NewEventWriter()
    try:
        await once.commit(events)
    finally:
        await once.close()


# On SQLite and PostgreSQL only a NewEvent's values are bound per row (received_at first: never
# NULL, and sqlite_driver.commit_made pads with NULL rows); _CONSTANT is written into the
# statement: binding 4 values a row instead of 11 is work done holding the GIL (SQLite: on the
# database thread; PostgreSQL: asyncpg's encoding, on the event loop).
@functools.cache
def _new_insert(dialect: Dialect) -> str:
    """``INSERT INTO webhook_events (<_BOUND>, <_CONSTANT's>) SELECT <4 values>, <constants>``
    on ``dialect``: on SQLite over ``column1…4`` of the VALUES list commit_made adds, on
    PostgreSQL over ``unnest`` of one array per bound column. The constants are rendered by
    SQLAlchemy (built from the model and constants only: no input reaches the SQL)."""
    table: Table = WebhookEvent.__table__  # type: ignore[assignment]
    constants = ", ".join(
        str(
            literal(value, table.c[name].type).compile(
                dialect=dialect, compile_kwargs={"literal_binds": True}
            )
        )
        for name, value in _CONSTANT.items()
    )
    head = f"INSERT INTO {table.name} ({', '.join((*_BOUND, *_CONSTANT))}) SELECT "
    if dialect.name == "postgresql":
        arrays = ", ".join(f"${i}::{t}[]" for i, (t, _) in enumerate(_BOUND.values(), 1))
        names = ", ".join(_BOUND)
        values = ", ".join(e.format(f"u.{name}") for name, (_, e) in _BOUND.items())
        return f"{head}{values}, {constants} FROM unnest({arrays}) AS u({names})"
    values = ", ".join(f"column{i}" for i in range(1, len(_BOUND) + 1))
    return f"{head}{values}, {constants}"


def sqlite_datetime(micros: int) -> str:
    """POSIX microseconds as SQLAlchemy stores a :class:`connectx.db.base.UTCDateTime` on
    SQLite (naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``, microseconds always written): the
    second's text made once per second (a group commit's rows share a few), the microseconds
    added (~0.3 µs a row; formatting a datetime's fields cost 1.2, one per POST in intake's
    loop)."""
    second, fraction = divmod(micros, 1_000_000)
    return f"{_sqlite_second(second)}.{fraction:06d}"


@functools.lru_cache(maxsize=8)
def _sqlite_second(second: int) -> str:
    return (clock.EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%d %H:%M:%S")


def _sqlite_row(event: NewEvent) -> tuple[Any, ...]:
    """A new event's values as SQLAlchemy binds them on SQLite (integers and bytes pass
    unchanged; the time is formatted)."""
    at, meta_app_id, body_enc, size = event
    return (sqlite_datetime(at), meta_app_id, body_enc, size)


def _pg_columns(events: list[NewEvent]) -> list[list[Any]]:
    """New events as one array per column (asyncpg binds aware datetimes as ``timestamptz``)."""
    return [list(column) for column in zip(*events, strict=True)]


LOCK_TIMEOUT = "10s"  # a processing transaction waits this long for a row or advisory lock
STATEMENT_TIMEOUT = "60s"  # ... and this long for any one statement (PostgreSQL)


async def bound_waits(db: AsyncSession) -> None:
    """Bound this transaction's waits on PostgreSQL (``lock_timeout``, ``statement_timeout``,
    transaction-local): a stuck peer or a runaway statement ends the batch with an error the
    processor backs off from, instead of holding the loop's connection forever."""
    if db.get_bind().dialect.name != "postgresql":
        return
    await db.execute(
        text(
            "SELECT set_config('lock_timeout', :lock, true), "
            "set_config('statement_timeout', :stmt, true)"
        ),
        {"lock": LOCK_TIMEOUT, "stmt": STATEMENT_TIMEOUT},
    )


def _claimable() -> ColumnElement[bool]:
    """Pending, and not held for a workspace whose suspension is still in force (lifting it
    makes its held events claimable again, with no further step). The status is written as a
    literal: the partial index of pending events serves every plan (models/webhook_event.py)."""
    suspended = select(WorkspaceSuspension.workspace_id).where(
        WorkspaceSuspension.lifted_at.is_(None)
    )
    return pending_only() & or_(
        WebhookEvent.held_for.is_(None), WebhookEvent.held_for.not_in(suspended)
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """What processing reads of a claimed event (plain columns: loading ORM objects of the
    whole row cost more than the rest of the claim)."""

    id: int
    received_at: datetime
    body_enc: bytes | None
    progress: int


def _claimed() -> Any:
    table: Table = WebhookEvent.__table__  # type: ignore[assignment]
    return select(table.c.id, table.c.received_at, table.c.body_enc, table.c.progress)


@functools.cache
def claim_statement() -> Any:
    """The claim's SELECT (walks ``ix_webhook_events_pending``, models/webhook_event.py), its
    LIMIT the parameter ``limit``. Built once: building it and its cache key was most of the
    claim's own CPU."""
    return (
        _claimed()
        .where(_claimable())
        .order_by(WebhookEvent.id)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )


async def claim(db: AsyncSession, limit: int) -> list[Claimed]:
    """Claimable events, oldest first, locked for this transaction. On PostgreSQL rows locked by
    another processor are skipped; on SQLite the transaction already holds the write lock."""
    found = await db.execute(claim_statement(), {"limit": limit})
    return [Claimed(*row) for row in found.all()]


async def claim_one(db: AsyncSession, event_id: int) -> Claimed | None:
    stmt = (
        _claimed()
        .where(WebhookEvent.id == event_id, _claimable())
        .with_for_update(skip_locked=True)
    )
    row = (await db.execute(stmt)).first()
    return Claimed(*row) if row is not None else None


@functools.cache
def _claim_again_statement() -> Any:
    table: Table = WebhookEvent.__table__  # type: ignore[assignment]
    return (
        select(table.c.id, table.c.progress)
        .where(table.c.id.in_(bindparam("ids", expanding=True)), _claimable())
        .with_for_update(skip_locked=True)
    )


async def claim_again(db: AsyncSession, events: list[Claimed]) -> list[Claimed]:
    """Of ``events`` claimed before this transaction (SQLite: read before the write lock was
    taken), those still claimable, with their progress as it is now; in id order."""
    if not events:
        return []
    found = await db.execute(_claim_again_statement(), {"ids": [e.id for e in events]})
    now: dict[int, int] = {event_id: progress for event_id, progress in found}
    return [
        e if e.progress == now[e.id] else dataclasses.replace(e, progress=now[e.id])
        for e in events
        if e.id in now
    ]


# PostgreSQL: every row in one statement execution (arrays through unnest), where an
# executemany is a statement execution per event on the server (as the status moves were,
# messages/repository.py). The rows are the transaction's claimed (locked) events.
_FINISH_BULK = text(
    """UPDATE webhook_events AS w SET status = v.status, processed_at = v.at, items = v.items,
  unrouted = v.unrouted, ignored = v.ignored, progress = v.progress, held_for = NULL
FROM unnest(CAST(:ids AS BIGINT[]), CAST(:statuses AS VARCHAR[]), CAST(:ats AS TIMESTAMPTZ[]),
  CAST(:items AS INTEGER[]), CAST(:unrouted AS INTEGER[]), CAST(:ignored AS INTEGER[]),
  CAST(:progress AS INTEGER[])) AS v(id, status, at, items, unrouted, ignored, progress)
WHERE w.id = v.id"""
)


_FINISH_SQLITE = (
    "UPDATE webhook_events SET status = ?, processed_at = ?, items = ?, unrouted = ?, "
    "ignored = ?, progress = ?, held_for = NULL WHERE id = ?"
)


async def finish_many(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Mark events done, one statement for all of them (SQLite: one executemany; PostgreSQL:
    one execution). Each row: ``event_id``, ``status``, ``processed_at``, ``items``,
    ``unrouted``, ``ignored``, ``progress``. (A per-event ORM UPDATE cost a third of
    processing's CPU, bench/results/intake-2026-12-03b.md.)"""
    if not rows:
        return
    if db.get_bind().dialect.name != "postgresql":
        # The driver's own executemany: SQLAlchemy's per-row parameter processing (a dict and
        # a type conversion per value and row) cost more than SQLite's work on each row.
        conn = await db.connection()
        await conn.exec_driver_sql(
            _FINISH_SQLITE,
            [
                (
                    r["status"],
                    sqlite_text(r["processed_at"]),
                    r["items"],
                    r["unrouted"],
                    r["ignored"],
                    r["progress"],
                    r["event_id"],
                )
                for r in rows
            ],
        )
        return
    await db.execute(
        _FINISH_BULK,
        arrays.columns(
            rows,
            {
                "ids": "event_id",
                "statuses": "status",
                "ats": "processed_at",
                "items": "items",
                "unrouted": "unrouted",
                "ignored": "ignored",
                "progress": "progress",
            },
        ),
    )


async def set_progress(db: AsyncSession, event_id: int, progress: int) -> None:
    """Remember how many of the event's updates are applied (it stays pending)."""
    await db.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id)
        .values(progress=progress, held_for=None)
        .execution_options(synchronize_session=False)
    )


async def hold(db: AsyncSession, event_id: int, workspace_id: int, progress: int) -> None:
    """Leave the event pending, unclaimed until ``workspace_id``'s suspension is lifted (its
    attempts are not counted: nothing failed)."""
    await db.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id)
        .values(held_for=workspace_id, progress=progress)
        .execution_options(synchronize_session=False)
    )


async def record_failure(
    db: AsyncSession, event_id: int, error: str, give_up_after: int, at: datetime
) -> None:
    """Count a failed attempt; past ``give_up_after`` the event is parked as failed."""
    event = await db.get(WebhookEvent, event_id)
    if event is None or event.status != PENDING:
        return
    event.attempts += 1
    event.last_error = error[:200]
    if event.attempts >= give_up_after:
        event.status = FAILED
        event.processed_at = at
    await db.flush()


async def count_by_status(db: AsyncSession) -> dict[str, int]:
    stmt = select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
    return {status: int(n) for status, n in (await db.execute(stmt)).all()}


async def flagged(db: AsyncSession, limit: int) -> list[WebhookEvent]:
    """Events kept for inspection: malformed, failed, or with updates for unknown numbers."""
    stmt = (
        select(WebhookEvent)
        .where((WebhookEvent.status != "processed") | (WebhookEvent.unrouted > 0))
        .where(WebhookEvent.status != PENDING)
        .order_by(WebhookEvent.id.desc())
        .limit(limit)
    )
    return list((await db.execute(stmt)).scalars())


async def requeue(db: AsyncSession, ids: list[int], *, all_failed: bool) -> list[int]:
    """Make events pending again (parked failures, or flagged events worth another pass once
    their number is connected). Safe: applying an event twice changes nothing."""
    stmt = update(WebhookEvent).where(WebhookEvent.status != PENDING)
    if all_failed:
        stmt = stmt.where(WebhookEvent.status == FAILED)
    else:
        stmt = stmt.where(WebhookEvent.id.in_(ids))
    result = await db.execute(
        stmt.values(status=PENDING, attempts=0, last_error=None, processed_at=None, progress=0)
        .returning(WebhookEvent.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars())


async def processing_generation(db: AsyncSession) -> int | None:
    """The generation of what processors cache between transactions (live channels, suspended
    workspaces, consent keywords): a new value after any change to them (triggers, migration
    0008p). None when the row is missing: nothing may be cached then."""
    stmt = select(ConfigGeneration.value).where(ConfigGeneration.name == PROCESSING)
    value = (await db.execute(stmt)).scalar_one_or_none()
    return int(value) if value is not None else None


async def suspended_workspaces(db: AsyncSession) -> frozenset[int]:
    """Every workspace suspended now (few: the processors' cache holds them all)."""
    stmt = select(WorkspaceSuspension.workspace_id).where(WorkspaceSuspension.lifted_at.is_(None))
    return frozenset(int(v) for v in (await db.execute(stmt)).scalars())
