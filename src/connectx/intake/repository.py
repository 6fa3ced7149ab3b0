"""SQL for raw webhook events."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.db import sqlite_driver
from connectx.db.engine import get_engine
from connectx.models.security import WorkspaceSuspension
from connectx.models.webhook_event import FAILED, PENDING, WebhookEvent


async def insert_many(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Rows of raw events in the caller's transaction: one Core executemany (compiled once,
    cached; the ORM's bulk path cost more than the SQL under load)."""
    table: Table = WebhookEvent.__table__  # type: ignore[assignment]
    await db.execute(insert(table), rows)


async def commit_new(rows: list[dict[str, Any]]) -> None:
    """A group commit: insert the rows of raw events and commit them, in a transaction of their
    own, with no ORM session (no identity map, no flush, no events to run after it). On SQLite
    (our driver) the whole transaction is one trip to the database thread, its parameters
    bound here exactly as SQLAlchemy binds them; elsewhere a Core transaction."""
    engine = get_engine()
    if isinstance(engine.dialect.dbapi, sqlite_driver.OneTripDBAPI):
        operation, binders = _sqlite_insert(engine.dialect)
        parameters = [tuple(bind(row[name]) for name, bind in binders) for row in rows]
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await sqlite_driver.commit_many(raw.driver_connection, operation, parameters)
        return
    table: Table = WebhookEvent.__table__  # type: ignore[assignment]
    async with engine.begin() as conn:
        await conn.execute(insert(table), rows)


_NEW_COLUMNS = (
    "source",
    "meta_app_id",
    "received_at",
    "body_enc",
    "body_size",
    "status",
    "attempts",
    "progress",
    "items",
    "unrouted",
    "ignored",
)


@functools.cache
def _sqlite_insert(dialect: Dialect) -> tuple[str, list[tuple[str, Callable[[Any], Any]]]]:
    """The INSERT of a group commit's rows in SQLite's SQL (``?`` placeholders) and, per
    placeholder, the row key and the column type's bind processor (how SQLAlchemy stores it)."""
    table: Table = WebhookEvent.__table__  # type: ignore[assignment]
    compiled = insert(table).values({name: bindparam(name) for name in _NEW_COLUMNS})
    sql = compiled.compile(dialect=dialect)
    binders: list[tuple[str, Callable[[Any], Any]]] = []
    for name in sql.positiontup or ():
        process = table.c[name].type._cached_bind_processor(dialect)
        binders.append((name, process or _same))
    return str(sql), binders


def _same(value: Any) -> Any:
    return value


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
    makes its held events claimable again, with no further step)."""
    suspended = select(WorkspaceSuspension.workspace_id).where(
        WorkspaceSuspension.lifted_at.is_(None)
    )
    return (WebhookEvent.status == PENDING) & or_(
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


async def claim(db: AsyncSession, limit: int) -> list[Claimed]:
    """Claimable events, oldest first, locked for this transaction. On PostgreSQL rows locked by
    another processor are skipped; on SQLite the transaction already holds the write lock."""
    stmt = (
        _claimed()
        .where(_claimable())
        .order_by(WebhookEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [Claimed(*row) for row in (await db.execute(stmt)).all()]


async def claim_one(db: AsyncSession, event_id: int) -> Claimed | None:
    stmt = (
        _claimed()
        .where(WebhookEvent.id == event_id, _claimable())
        .with_for_update(skip_locked=True)
    )
    row = (await db.execute(stmt)).first()
    return Claimed(*row) if row is not None else None


@functools.cache
def _finish_statement() -> Any:
    """``UPDATE webhook_events SET ... WHERE id = :event_id``, built once: executed with one
    parameter set per event (an executemany), its SQL is compiled once and cached."""
    table: Table = WebhookEvent.__table__  # type: ignore[assignment]
    return (
        update(table)
        .where(table.c.id == bindparam("event_id"))
        .values(
            status=bindparam("status"),
            processed_at=bindparam("processed_at"),
            items=bindparam("items"),
            unrouted=bindparam("unrouted"),
            ignored=bindparam("ignored"),
            progress=bindparam("progress"),
            held_for=None,
        )
    )


async def finish_many(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Mark events done, one statement for all of them. Each row: ``event_id``, ``status``,
    ``processed_at``, ``items``, ``unrouted``, ``ignored``, ``progress``. (A per-event ORM
    UPDATE cost a third of processing's CPU, bench/results/intake-2026-12-03b.md.)"""
    if rows:
        await db.execute(_finish_statement(), rows)


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
