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

from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

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
        for stmt in (repo.claim_statement(600), probe):
            for plan in await _plans(conn, stmt):
                assert INDEX in plan, plan
        claimed = await repo.claim(db, 600)
    assert len(claimed) == 600
    assert [c.id for c in claimed] == sorted(c.id for c in claimed)  # the oldest pending first
