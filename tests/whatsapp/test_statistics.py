"""PostgreSQL: the processors keep the planner's statistics of the tables they fill current
(connectx.db.statistics), whether or not the server's autovacuum runs (it is off on this
project's machines): plans made on empty tables used to stay, and scanned whole tables."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from connectx.config import get_settings
from connectx.db import statistics
from connectx.db.engine import get_engine
from connectx.intake import processor
from connectx.models.message import MessageStatusEvent
from tests.whatsapp.support import count, delivered, sent_statuses

STATUSES = 200  # status callbacks in the one POST: more than autovacuum's threshold of 50


@pytest.fixture(autouse=True)
def postgres_only() -> None:
    if get_settings().is_sqlite:
        pytest.skip("PostgreSQL's planner statistics (SQLite plans without them)")


def _statuses(n: int) -> dict[str, Any]:
    return sent_statuses(f"wamid.stats.{time.time_ns()}", n)


async def _last_analyzed(table: str) -> datetime | None:
    async with get_engine().connect() as conn:
        return (
            await conn.execute(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = :t"),
                {"t": table},
            )
        ).scalar_one()


async def _eventually(check: Any, seconds: float = 20) -> bool:
    """Whether ``check()`` comes true within ``seconds``: the server counts a transaction's
    changes a moment after it ends (up to ~10 s when idle)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def _until_analyzed(table: str, before: datetime | None, step: Any) -> bool:
    """Run ``step`` until ``table`` was analysed after ``before``."""

    async def analysed() -> bool:
        await step()
        after = await _last_analyzed(table)
        return after is not None and (before is None or after > before)

    return await _eventually(analysed)


async def test_the_processor_analyses_the_tables_it_filled(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()  # this test drives processing itself
    before = await _last_analyzed("message_status_events")
    await delivered(client, _statuses(STATUSES))
    assert await processor.process_available() == 1
    assert await count(MessageStatusEvent) == STATUSES

    async def a_later_pass() -> None:  # another webhook, CHECK_S later
        monkeypatch.setattr(statistics, "_next_check", 0.0)
        await delivered(client, _statuses(1))
        assert await processor.process_available() == 1

    assert await _until_analyzed("message_status_events", before, a_later_pass)
    async with get_engine().connect() as conn:
        columns = (
            await conn.execute(
                text("SELECT count(*) FROM pg_stats WHERE tablename = 'message_status_events'")
            )
        ).scalar_one()
    assert columns > 0


async def test_statistics_are_checked_at_most_every_few_seconds(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor.stop_embedded()
    calls: list[object] = []

    async def counted(engine: object) -> list[str]:
        calls.append(engine)
        return []

    monkeypatch.setattr(statistics, "analyze_stale", counted)
    monkeypatch.setattr(statistics, "_next_check", 0.0)
    for _ in range(5):
        await delivered(client, _statuses(1))
        await processor.process_available(limit=1)
        await statistics.keep_current()
    await statistics.settle()
    assert len(calls) == 1


async def test_the_processor_does_not_wait_for_the_analysis(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ANALYZEs run beside processing: in line, a pass over growing tables (20-190 ms)
    stalled the processor every CHECK_S, and every event arriving meanwhile waited it out."""
    processor.stop_embedded()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(engine: object) -> list[str]:
        started.set()
        await release.wait()
        return []

    monkeypatch.setattr(statistics, "analyze_stale", slow)
    monkeypatch.setattr(statistics, "_next_check", 0.0)
    await delivered(client, _statuses(1))
    assert await asyncio.wait_for(processor.process_available(), 10) == 1
    await asyncio.wait_for(started.wait(), 10)
    await delivered(client, _statuses(1))
    assert await asyncio.wait_for(processor.process_available(), 10) == 1  # it goes on
    settling = asyncio.create_task(statistics.settle())
    await asyncio.sleep(0.05)
    assert not settling.done()  # a stopping processor waits for the analysis under way
    release.set()
    await asyncio.wait_for(settling, 10)


async def test_one_process_analyses_at_a_time(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    processor.stop_embedded()
    before = await _last_analyzed("message_status_events")
    await delivered(client, _statuses(STATUSES))
    await processor.process_available()
    engine = get_engine()
    async with engine.begin() as other:  # another process is analysing
        a, b = statistics._LOCK
        await other.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": a, "b": b})
        assert await statistics.analyze_stale(engine) == []

    async def analyse() -> None:
        await statistics.analyze_stale(engine)

    assert await _until_analyzed("message_status_events", before, analyse)


async def _stale() -> set[str]:
    async with get_engine().connect() as conn:
        found = await conn.execute(
            statistics._STALE, {"threshold": statistics.THRESHOLD, "scale": statistics.SCALE}
        )
        return set(found.scalars())


async def _stale_has(tables: set[str]) -> bool:
    return tables <= await _stale()


async def _waited_for(table: str) -> bool:
    async with get_engine().connect() as conn:
        waiting = await conn.execute(
            text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = :t AND NOT l.granted"
            ),
            {"t": table},
        )
        return bool(waiting.scalar_one())


async def test_no_table_stays_locked_while_the_next_one_is_waited_for(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each table is analysed in a transaction of its own: one transaction for all kept every
    analysed table's lock while it waited for the next, and deadlocked with a restore's
    ``DROP SCHEMA ... CASCADE`` (which locks the tables in another order)."""
    processor.stop_embedded()
    monkeypatch.setattr(statistics, "_next_check", float("inf"))  # only this test analyses
    for _ in range(60):
        await delivered(client, _statuses(1))
    assert await processor.process_available() == 60
    both = {"message_status_events", "webhook_events"}  # analysed in this order (by name)
    assert await _eventually(lambda: _stale_has(both))
    monkeypatch.setattr(statistics, "LOCK_TIMEOUT_MS", 10_000)
    engine = get_engine()
    async with engine.connect() as holder:
        await holder.execute(text("LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE"))
        keeper = asyncio.create_task(statistics.analyze_stale(engine))
        assert await _eventually(lambda: _waited_for("webhook_events"), 10)
        async with engine.connect() as other:  # the table analysed first is free again
            await other.execute(
                text("LOCK TABLE message_status_events IN ACCESS EXCLUSIVE MODE NOWAIT")
            )
            await other.rollback()
        await holder.rollback()
    assert both <= set(await keeper)
