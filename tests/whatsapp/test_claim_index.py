"""The claim walks the partial index of pending events, whatever the statistics say.

During a burst most raw events are pending and the oldest ids are processed ones: with a full
(status, id) index and the status bound as a parameter, PostgreSQL's plan (the generic plan of
asyncpg's prepared statement, and the custom one before statistics) walked the primary key past
every processed row, 130-180 ms a claim after ~50,000 of them in bench/intake.py. The claim and
the outbox's "processed until" probe must use ``ix_webhook_events_pending`` on both databases,
in custom and generic plans, with the table analysed in that state (PostgreSQL; the platform
never analyses SQLite, whose planner then prefers the index).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from connectx.db.session import unit_of_work
from connectx.intake import repository as repo
from connectx.kit import clock
from connectx.models.webhook_event import PENDING, PROCESSED, WebhookEvent
from connectx.outbound import repository as outbound_repo

INDEX = "ix_webhook_events_pending"


async def _burst(processed: int, pending: int) -> None:
    """``processed`` old events, then ``pending`` newer ones, and fresh statistics."""
    now = clock.micros()
    row = repo.new_row((now, None, b"sealed", 6))
    table = WebhookEvent.__table__
    async with unit_of_work() as db:
        for status, n in ((PROCESSED, processed), (PENDING, pending)):
            await db.execute(insert(table), [{**row, "status": status}] * n)
    async with unit_of_work() as db:
        if db.get_bind().dialect.name == "postgresql":  # (SQLite is never analysed: statistics.py)
            await db.execute(text("ANALYZE webhook_events"))


async def _plans(conn: AsyncConnection, stmt: Any) -> list[str]:
    """The plans ``stmt`` gets: SQLite's; on PostgreSQL the custom plan and the generic plan of
    the statement prepared as asyncpg prepares it (parameters bound, never inlined)."""
    if conn.dialect.name == "sqlite":
        compiled = stmt.compile(dialect=conn.dialect)
        args = tuple(compiled.params[name] for name in compiled.positiontup)
        found = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)
        return ["\n".join(str(r[-1]) for r in found)]
    literal = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    custom = await conn.exec_driver_sql(f"EXPLAIN {literal}")
    compiled = stmt.compile(dialect=conn.dialect)
    values = ", ".join(repr(compiled.params[name]) for name in compiled.positiontup)
    await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    await conn.exec_driver_sql(f"PREPARE claim_probe AS {compiled}")
    generic = await conn.exec_driver_sql(f"EXPLAIN EXECUTE claim_probe({values})")
    await conn.exec_driver_sql("DEALLOCATE claim_probe")
    return ["\n".join(r[0] for r in custom), "\n".join(r[0] for r in generic)]


async def test_a_claim_during_a_burst_walks_the_pending_index() -> None:
    await _burst(processed=2_000, pending=8_000)
    probe = outbound_repo.webhooks_processed_until_statement()
    async with unit_of_work() as db:
        conn = await db.connection()
        for stmt in (repo.claim_statement().params(limit=600), probe):
            for plan in await _plans(conn, stmt):
                assert INDEX in plan, plan
        claimed = await repo.claim(db, 600)
    assert len(claimed) == 600
    assert [c.id for c in claimed] == sorted(c.id for c in claimed)  # the oldest pending first


async def test_migration_0011w_replaces_an_index_a_failed_concurrent_build_left() -> None:
    """PostgreSQL builds the index CONCURRENTLY; a build that failed leaves an invalid index
    of the same name, which ``IF NOT EXISTS`` alone would keep (and the claim never use)."""
    server = os.environ.get("CONNECTX_TEST_DATABASE_URL")
    if not server:
        pytest.skip("PostgreSQL's concurrent index builds (SQLite: the events file's schema)")
    from alembic import command

    from connectx.db.migrate import alembic_config, upgrade
    from tests.support.databases import drop_postgres_database, fresh_postgres_database

    name = f"cx_0011w_{os.getpid()}"
    url = await asyncio.to_thread(fresh_postgres_database, server, name)
    engine = create_async_engine(url)
    indexes = text(
        "SELECT indexrelid::regclass::text, indisvalid, pg_get_indexdef(indexrelid) "
        "FROM pg_index WHERE indrelid = 'webhook_events'::regclass ORDER BY 1"
    )
    try:
        await asyncio.to_thread(upgrade, url, "0010s")
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE INDEX {INDEX} ON webhook_events (id)"))
            await conn.execute(
                text(
                    f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{INDEX}'::regclass"
                )
            )
        await asyncio.to_thread(upgrade, url)
        async with engine.connect() as conn:
            found = {r[0]: r[1:] for r in await conn.execute(indexes)}
        assert set(found) == {"pk_webhook_events", "ix_webhook_events_received_at", INDEX}
        valid, definition = found[INDEX]
        assert valid and definition.endswith("(id) WHERE ((status)::text = 'pending'::text)")
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0010s")
        async with engine.connect() as conn:
            found = {r[0]: r[1:] for r in await conn.execute(indexes)}
        assert set(found) == {
            "pk_webhook_events",
            "ix_webhook_events_received_at",
            "ix_webhook_events_status_id",
        }
    finally:
        await engine.dispose()
        await asyncio.to_thread(drop_postgres_database, server, name)
