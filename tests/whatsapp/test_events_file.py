"""SQLite: raw webhook events live in a file of their own beside the data file
(db/events_file.py), attached to every connection of the data file, so intake never takes the
write lock the processing transaction holds; migration 0007r moves an existing data file's."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from connectx.config import get_settings
from connectx.db import events_file
from connectx.db.session import unit_of_work
from connectx.intake import processor
from connectx.models.webhook_event import WebhookEvent
from tests.whatsapp.support import delivered, drain, load, rows


@pytest.fixture(autouse=True)
def sqlite_only() -> None:
    if not events_file.split():
        pytest.skip("PostgreSQL keeps raw events in the one database")


def _tables(path: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


async def test_raw_events_are_stored_in_the_events_file_and_read_by_their_name(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    processor.stop_embedded()
    await delivered(client, load("message_text"))
    data = events_file.file_of(get_settings().effective_database_url)
    events = events_file.path()
    assert data is not None and events == str(Path(data).with_name("test-events.db"))
    assert "webhook_events" not in _tables(data)
    conn = sqlite3.connect(events)
    assert conn.execute("SELECT status FROM webhook_events").fetchall() == [("pending",)]
    conn.close()
    (event,) = await rows(WebhookEvent)  # the ordinary session finds it by its name
    assert event.status == "pending"
    assert await drain() == {"processed": 1}


async def test_the_events_file_has_the_models_columns_and_indexes() -> None:
    model = WebhookEvent.__table__
    events = events_file.path()
    assert events is not None
    conn = sqlite3.connect(events)
    try:
        columns = {
            r[1]: (r[2], bool(r[3])) for r in conn.execute("PRAGMA table_info(webhook_events)")
        }
        indexes = {
            r[1]: [c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})")]
            for r in conn.execute("PRAGMA index_list(webhook_events)")
            if not r[1].startswith("sqlite_autoindex")
        }
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    assert set(columns) == {c.name for c in model.columns}
    for c in model.columns:
        assert columns[c.name][1] == (not c.nullable), c.name
    assert indexes == {ix.name: [col.name for col in ix.columns] for ix in model.indexes}
    assert version == events_file.SCHEMA_VERSION


async def test_a_write_transaction_of_the_data_file_leaves_the_events_file_free(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """``BEGIN IMMEDIATE`` would take the write lock of every attached file: the data file's
    transactions begin with a write to ``main`` alone, so intake is never kept waiting."""
    processor.stop_embedded()
    await delivered(client, load("message_text"))  # (the app secrets are read)
    events = events_file.path()
    assert events is not None
    async with unit_of_work() as db:
        await db.execute(text("SELECT count(*) FROM webhook_events"))  # reads it, too
        other = sqlite3.connect(events, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # would raise "database is locked"
            other.execute("ROLLBACK")
        finally:
            other.close()
        data = events_file.file_of(get_settings().effective_database_url)
        main = sqlite3.connect(data or "", timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                main.execute("BEGIN IMMEDIATE")  # ... while the data file's lock is held
        finally:
            main.close()
        # and a webhook is stored meanwhile
        await asyncio.wait_for(delivered(client, load("message_image")), 10)
    assert await drain() == {"processed": 2}


COLUMNS = (
    "id, source, meta_app_id, received_at, body_enc, body_size, status, attempts, progress, "
    "items, unrouted, ignored, last_error, processed_at, held_for"
)


async def test_migration_0007r_moves_the_raw_events_and_back(tmp_path: Path) -> None:
    from connectx.db.migrate import upgrade

    path = str(tmp_path / "old.db")
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url, "0006o")
    conn = sqlite3.connect(path)
    raw = [
        (
            n,
            "whatsapp",
            None,
            f"2026-12-0{n} 10:00:00.000000",
            b"sealed",
            6,
            status,
            0,
            0,
            1,
            0,
            0,
            None,
            None,
            None,
        )
        for n, status in ((3, "processed"), (7, "pending"))
    ]
    conn.executemany(f"INSERT INTO webhook_events ({COLUMNS}) VALUES ({', '.join('?' * 15)})", raw)
    conn.commit()
    conn.close()

    await asyncio.to_thread(upgrade, url, "0007r")
    assert "webhook_events" not in _tables(path)
    moved = sqlite3.connect(events_file.path_for(path))
    assert moved.execute(f"SELECT {COLUMNS} FROM webhook_events ORDER BY id").fetchall() == raw
    moved.close()
    await asyncio.to_thread(upgrade, url, "0007r")  # (at head: nothing runs twice)

    from alembic import command

    from connectx.db.migrate import alembic_config

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0006o")
    back = sqlite3.connect(path)
    assert back.execute(f"SELECT {COLUMNS} FROM webhook_events ORDER BY id").fetchall() == raw
    back.close()


async def test_the_count_of_raw_events_is_the_same_through_either_door(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """The events file's own engine (intake's) and the data file's attached view agree."""
    processor.stop_embedded()
    for _ in range(3):
        await delivered(client, load("message_text"))
    async with events_file.session() as db:
        direct = (await db.execute(select(func.count()).select_from(WebhookEvent))).scalar_one()
    async with unit_of_work() as db:
        attached = (await db.execute(select(func.count()).select_from(WebhookEvent))).scalar_one()
    assert direct == attached == 3


def _indexes(path: str) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        return {
            r[1]: [c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})")]
            for r in conn.execute("PRAGMA index_list(webhook_events)")
        }
    finally:
        conn.close()


async def test_an_events_file_of_version_1_is_brought_up_to_date(tmp_path: Path) -> None:
    """Version 2: the full (status, id) index became the partial index of pending events
    (migration 0011w's change, made here for the events file); the rows stay."""
    path = str(tmp_path / "v1-events.db")
    conn = sqlite3.connect(path)
    conn.executescript(
        f"""CREATE TABLE webhook_events (id INTEGER NOT NULL PRIMARY KEY, source VARCHAR(16)
        NOT NULL, meta_app_id INTEGER, received_at DATETIME NOT NULL, body_enc BLOB, body_size
        INTEGER NOT NULL, status VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL, progress
        INTEGER NOT NULL, items INTEGER NOT NULL, unrouted INTEGER NOT NULL, ignored INTEGER
        NOT NULL, last_error VARCHAR(200), processed_at DATETIME, held_for INTEGER);
        CREATE INDEX ix_webhook_events_status_id ON webhook_events (status, id);
        CREATE INDEX ix_webhook_events_received_at ON webhook_events (received_at, id);
        INSERT INTO webhook_events ({COLUMNS}) VALUES (4, 'whatsapp', NULL,
        '2026-12-04 10:00:00.000000', x'00', 1, 'pending', 0, 0, 0, 0, 0, NULL, NULL, NULL);
        PRAGMA user_version = 1;"""
    )
    conn.close()
    events_file.ensure_schema(path)
    assert _indexes(path) == {
        "ix_webhook_events_pending": ["id"],
        "ix_webhook_events_received_at": ["received_at", "id"],
    }
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT id, status FROM webhook_events").fetchall() == [(4, "pending")]
        partial = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_webhook_events_pending'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert partial.endswith("WHERE status = 'pending'")
