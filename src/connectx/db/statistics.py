"""PostgreSQL planner statistics kept current by the platform, whatever autovacuum does.

Without statistics PostgreSQL's planner guesses that any equality keeps 0.5 % of a table, and
it keeps a prepared statement's generic plan until the table is analysed again. Webhook
processing fills tables from empty at thousands of rows a second, so on a server whose
autovacuum is off (this project's machines), or in the first minute of one where it is on
(autovacuum wakes once a minute), the plans made on nearly empty tables stayed: a batch's
status look-up (``messages.repository.status_refs``) scanned every message of the number
through a bitmap AND of two indexes instead of probing the unique key, and the processor fell
minutes behind (docs/whatsapp-inbound.md, "Planner statistics").

:func:`keep_current` is called by the processors between transactions. At most every
``CHECK_S`` seconds it starts, beside the processor (which goes on meanwhile), an ANALYZE of
the tables changed by more than ``THRESHOLD + SCALE`` x their rows since their last analysis
(autovacuum's own rule, with its default figures), which also makes the server drop the cached
plans on them. One process does it at a time (an advisory lock tried, never waited for); each
table is analysed in a transaction of its own, and one that someone else is analysing or
altering is left for the next check. On SQLite it does nothing (its planner prefers indexes
without statistics).
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from connectx.db.engine import get_engine

log = logging.getLogger(__name__)

CHECK_S = 5.0
THRESHOLD = 50  # autovacuum_analyze_threshold's default
SCALE = 0.1  # autovacuum_analyze_scale_factor's default
LOCK_TIMEOUT_MS = 100  # how long a table another transaction holds is waited for
_LOCK = (7301, 3)  # advisory lock (two-int form: apart from the one-bigint keys)

_STALE = text(
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.schemaname = current_schema() "
    "AND s.n_mod_since_analyze > :threshold + :scale * greatest(c.reltuples, 0) "
    "ORDER BY s.relname"
)

_next_check = 0.0
_refresh: asyncio.Task[None] | None = None  # the refresh under way, if any


async def analyze_stale(engine: AsyncEngine) -> list[str]:
    """ANALYZE this schema's tables whose statistics are stale, each in a transaction of its
    own; their names (none when another process holds the lock).

    One table at a time: a transaction that kept each table's lock while it waited for the
    next one's can deadlock with anything locking tables in another order (a restore's
    ``DROP SCHEMA ... CASCADE`` failed beside it in CI). The advisory lock is held by a
    transaction that locks no table (it uses a second pooled connection meanwhile)."""
    analysed: list[str] = []
    async with engine.begin() as guard:
        locked = await guard.execute(
            text("SELECT pg_try_advisory_xact_lock(:a, :b)"), {"a": _LOCK[0], "b": _LOCK[1]}
        )
        if not locked.scalar_one():
            return analysed
        stale = (await guard.execute(_STALE, {"threshold": THRESHOLD, "scale": SCALE})).scalars()
        for table in list(stale):
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}"))
                    await conn.execute(text(f'ANALYZE "{table}"'))
            except DBAPIError as exc:  # locked by someone else, or dropped meanwhile
                log.info("statistics of a table left for later (%s)", type(exc).__name__)
                continue
            analysed.append(table)
    return analysed


async def keep_current() -> None:
    """At most every ``CHECK_S`` seconds, start :func:`analyze_stale` on PostgreSQL as a task of
    this loop and return at once (one such task at a time). Never raises.

    Not awaited in line: while tables grow, a pass of ANALYZEs took 20-190 ms on the server
    (session 10, bench/intake.py at 3,300 webhooks/s), a stall of the processor every 5 s that
    every event arriving meanwhile waited out."""
    global _next_check, _refresh
    now = time.monotonic()
    if now < _next_check or (_refresh is not None and not _refresh.done()):
        return
    _next_check = now + CHECK_S
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return
    _refresh = asyncio.get_running_loop().create_task(_refresh_now(engine), name="statistics")


async def _refresh_now(engine: AsyncEngine) -> None:
    try:
        analysed = await analyze_stale(engine)
    except Exception as exc:
        log.warning("planner statistics not refreshed (%s)", type(exc).__name__)
        return
    if analysed:
        log.debug("analysed %d tables", len(analysed))


async def settle(timeout_s: float = 5.0) -> None:
    """Wait for this loop's refresh under way, if any, up to ``timeout_s`` (then cancel it): a
    processor stopping, before its engines are disposed."""
    task = _refresh
    if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
        return
    await asyncio.wait({task}, timeout=timeout_s)
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
