"""The group commit's driver-level write (intake/repository.NewEventWriter): the rows it stores
are exactly what SQLAlchemy stored, and the flusher keeps one pooled connection instead of
checking one out per group commit."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.dialects import sqlite

from connectx.db.base import UTCDateTime
from connectx.db.engine import get_engine
from connectx.intake import batcher as batcher_module
from connectx.intake import processor
from connectx.intake import repository as repo
from connectx.kit import clock
from connectx.models.webhook_event import WebhookEvent
from tests.whatsapp.support import count, deliver, load

COLUMNS = (
    "source, meta_app_id, received_at, body_enc, body_size, status, attempts, progress, items, "
    "unrouted, ignored"
)


def _times() -> list[datetime]:
    rng = random.Random(3)
    out = [
        datetime(2026, 12, 4, 2, 51, 7, 0, tzinfo=UTC),  # no microseconds: still written
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2027, 1, 1, 4, 59, 59, 5, tzinfo=timezone(timedelta(hours=5))),  # other zone
        datetime(2026, 3, 29, 0, 30, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    ]
    base = datetime(2000, 1, 1, tzinfo=UTC)
    for _ in range(3000):
        offset = timedelta(
            seconds=rng.randrange(0, 60 * 365 * 86400), microseconds=rng.randrange(10**6)
        )
        zone = timezone(timedelta(minutes=rng.randrange(-14 * 60, 14 * 60 + 1)))
        out.append((base + offset).astimezone(zone))
    return out


def test_received_at_is_formatted_as_sqlalchemy_binds_it_on_sqlite() -> None:
    """A new event's time (POSIX microseconds) is stored as SQLAlchemy binds the datetime."""
    column = WebhookEvent.__table__.c.received_at
    assert isinstance(column.type, UTCDateTime)
    bind = column.type._cached_bind_processor(sqlite.dialect())  # what SQLAlchemy binds with
    assert bind is not None
    for value in _times():
        assert repo.sqlite_datetime(clock.micros_of(value)) == bind(value), value
        assert clock.from_micros(clock.micros_of(value)) == value


def _events(times: list[datetime]) -> list[repo.NewEvent]:
    return [
        (clock.micros_of(at), None, bytes([i % 256]) * (i % 7 + 1), 10 + i)
        for i, at in enumerate(times)
    ]


async def _stored(after: int, upto: int) -> list[tuple[Any, ...]]:
    engine = get_engine()
    if engine.dialect.name == "sqlite":  # the stored values and their storage classes
        columns = ", ".join(f"{c}, typeof({c})" for c in COLUMNS.split(", "))
    else:  # the values as the server prints them (timestamptz in UTC)
        columns = ", ".join(f"{c}::text" for c in COLUMNS.split(", "))
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SET TIME ZONE 'UTC'"))
        result = await conn.execute(
            text(
                f"SELECT {columns} FROM webhook_events "
                "WHERE id > :after AND id <= :upto ORDER BY id"
            ),
            {"after": after, "upto": upto},
        )
        return [tuple(r) for r in result.all()]


async def _last_id() -> int:
    async with get_engine().connect() as conn:
        return int(
            (
                await conn.execute(text("SELECT coalesce(max(id), 0) FROM webhook_events"))
            ).scalar_one()
        )


async def test_the_writer_stores_exactly_what_sqlalchemy_stored(app: Any) -> None:
    """Identical stored values: the same rows through SQLAlchemy Core (the old path) and
    through the writer (driver level) read back the same, storage classes included."""
    processor.stop_embedded()
    events = _events(_times()[:300])
    start = await _last_id()
    table = WebhookEvent.__table__
    async with get_engine().begin() as conn:
        await conn.execute(insert(table), [repo.new_row(e) for e in events])
    middle = await _last_id()
    writer = repo.NewEventWriter()
    try:
        await writer.commit(events[:1])
        await writer.commit(events[1:])
    finally:
        await writer.close()
    through_core = await _stored(start, middle)
    through_writer = await _stored(middle, await _last_id())
    assert len(through_core) == len(events) == len(through_writer)
    assert through_writer == through_core


async def test_the_flusher_keeps_one_connection_and_gives_it_back(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """Sequential deliveries are separate group commits; they used to check a connection out
    of the pool each. The flusher's stays checked out and is given back when it stops."""
    processor.stop_embedded()
    engine = repo.writer_engine()  # SQLite: the events file's
    checkouts: list[int] = []

    def counted(*_: Any) -> None:
        checkouts.append(1)

    await deliver(client, load("message_text"))  # the flusher is running, its connection held
    event.listen(engine.sync_engine, "checkout", counted)
    try:
        for _ in range(5):
            assert (await deliver(client, load("message_text"))).status_code == 200
    finally:
        event.remove(engine.sync_engine, "checkout", counted)
    assert await count(WebhookEvent) == 6
    assert checkouts == []
    held = engine.pool.checkedout()  # type: ignore[attr-defined]
    await batcher_module.close()
    assert engine.pool.checkedout() == held - 1  # type: ignore[attr-defined]
    assert (await deliver(client, load("message_text"))).status_code == 200  # starts again
    await asyncio.sleep(0)
    assert await count(WebhookEvent) == 7


async def test_the_first_group_commit_quiets_the_garbage_collector(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A web process that only receives (distributed serve: no sender or processor beside it)
    quiets the collector too, once its batcher starts."""
    import gc

    from connectx.kit import collector

    await batcher_module.close()  # the next delivery starts the flusher again
    frozen: list[int] = []
    monkeypatch.setattr(collector, "_gc_quiet", False)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    monkeypatch.setattr(gc, "set_threshold", lambda *_: None)  # the test process's stays as is
    assert (await deliver(client, load("message_text"))).status_code == 200
    assert frozen == [1]


async def test_the_first_group_commit_shortens_the_thread_switch_interval(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group commit's database thread gets the GIL back from a busy loop within 0.5 ms
    (kit/switching.py), not Python's 5 ms; a shorter interval is left as it is."""
    import sys

    from connectx.kit.switching import SWITCH_INTERVAL_S

    monkeypatch.setattr(sys, "getswitchinterval", lambda: 0.005)
    intervals: list[float] = []
    monkeypatch.setattr(sys, "setswitchinterval", intervals.append)
    await batcher_module.close()  # the next delivery starts the flusher again
    assert (await deliver(client, load("message_text"))).status_code == 200
    assert intervals == [SWITCH_INTERVAL_S] == [0.0005]
    monkeypatch.setattr(sys, "getswitchinterval", lambda: 0.0001)
    await batcher_module.close()
    assert (await deliver(client, load("message_text"))).status_code == 200
    assert intervals == [0.0005]


def test_a_group_commit_seals_under_the_day_subject_of_its_requests() -> None:
    """The subject formatted once per day (batcher._subject_of_day, from the requests' POSIX
    microseconds) is day_subject's of their time."""
    start = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    for minutes in range(0, 60 * 24 * 40, 97):
        at = start + timedelta(minutes=minutes, microseconds=minutes)
        day = clock.micros_of(at) // batcher_module._DAY_US
        assert batcher_module._subject_of_day(day) == batcher_module.day_subject(at)


async def test_a_kept_connection_the_server_closed_is_replaced_before_use(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """PostgreSQL closes the flusher's connection while it waits (a restart,
    pg_terminate_backend): the next delivery is stored on a new one, not answered 503."""
    if get_engine().dialect.name != "postgresql":
        pytest.skip("a server that closes connections (PostgreSQL)")
    import asyncpg

    processor.stop_embedded()
    assert (await deliver(client, load("message_text"))).status_code == 200
    kept = batcher_module.batcher()._writer._driver
    outside = await asyncpg.connect(
        get_engine().url.set(drivername="postgresql").render_as_string(False)
    )
    try:
        assert await outside.fetchval("SELECT pg_terminate_backend($1)", kept.get_server_pid())
    finally:
        await outside.close()
    for _ in range(100):  # until the driver has seen its socket close
        if kept.is_closed():
            break
        await asyncio.sleep(0.01)
    assert kept.is_closed()
    assert (await deliver(client, load("message_text"))).status_code == 200
    assert await count(WebhookEvent) == 2


async def test_postgresql_stores_raw_bodies_without_trying_to_compress_them(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """Sealed bodies are ciphertext: EXTERNAL storage (migration 0009p) moves a large one out of
    line without pglz's attempt, which failed on every such body and cost most of the server's
    work of a group commit of 50-update deliveries."""
    from connectx.config import get_settings

    if get_settings().is_sqlite:
        pytest.skip("PostgreSQL's column storage (SQLite keeps raw events in their own file)")
    payload = load("message_text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] = [  # texts LZ4 cannot shorten (raw_body.py): a large sealed value
        {**value["messages"][0], "id": f"wamid.big.{i}", "text": {"body": secrets.token_hex(100)}}
        for i in range(60)
    ]
    assert (await deliver(client, payload)).status_code == 200
    async with get_engine().connect() as conn:
        storage = await conn.scalar(
            text(
                "SELECT attstorage::text FROM pg_attribute WHERE attname = 'body_enc' "
                "AND attrelid = 'webhook_events'::regclass"
            )
        )
        size, compression = (
            await conn.execute(
                text(
                    "SELECT octet_length(body_enc), pg_column_compression(body_enc) "
                    "FROM webhook_events "
                    "ORDER BY id DESC LIMIT 1"
                )
            )
        ).one()
    assert storage == "e"  # EXTERNAL (EXTENDED, the default, is "x")
    assert size > 8_000 and compression is None


async def test_a_delivery_is_stamped_with_the_clock_moved_or_not(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """received_at comes from clock.micros(), which moves with the clock as now() does."""
    from sqlalchemy import select

    from connectx.db.session import unit_of_work

    processor.stop_embedded()
    for days in (0, 3):
        clock.advance(timedelta(days=days))
        before = clock.now()
        assert (await deliver(client, load("message_text"))).status_code == 200
        after = clock.now()
        async with unit_of_work() as db:
            stamped = (
                (
                    await db.execute(
                        select(WebhookEvent.received_at).order_by(WebhookEvent.id.desc())
                    )
                )
                .scalars()
                .first()
            )
        assert stamped is not None and before <= stamped <= after
