"""Sessions and the unit of work.

Services never commit (house rule 4): the request or task boundary owns the transaction. HTTP
handlers get a session from :func:`db_session`, which commits after the endpoint returns and
before the response is sent, then runs the callbacks registered with :func:`after_commit`
(events to browsers, job wake-ups).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectx.db.engine import READ_ONLY, get_engine

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[None]]


def session_factory() -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(get_engine(), expire_on_commit=False, autoflush=True)


def after_commit(db: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once the current transaction has committed (never on rollback)."""
    db.info.setdefault("after_commit", []).append(callback)


async def _run_after_commit(db: AsyncSession) -> None:
    callbacks: list[AfterCommit] = db.info.pop("after_commit", [])
    for callback in callbacks:
        try:
            await callback()
        except Exception:  # a wake-up that fails is recovered by the reconciler
            log.exception("after-commit callback failed")


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """A transaction that commits on success and rolls back on error."""
    async with session_factory()() as db:
        try:
            yield db
            await db.commit()
        except BaseException:
            await db.rollback()
            db.info.pop("after_commit", None)
            raise
    await _run_after_commit(db)


@asynccontextmanager
async def read_only(plain_reads: bool = False) -> AsyncIterator[AsyncSession]:
    """A transaction that only reads (rolled back at the end, so nothing it did is kept). On
    SQLite it begins ``DEFERRED`` instead of ``IMMEDIATE``: it takes no write lock, so a check
    made after a commit ("is there anything to do?") does not queue behind or hold up writers.
    Do not write in it: on SQLite a write would have to upgrade the lock and could fail.

    ``plain_reads``: the caller only runs plain SELECTs (no locks, no settings), so on
    PostgreSQL, where each statement of a READ COMMITTED transaction sees its own snapshot
    anyway, they run without a transaction: no BEGIN and no ROLLBACK round trip (the page
    gate, once per page view)."""
    async with session_factory()() as db:
        try:
            options: dict[str, Any] = {READ_ONLY: True}
            if plain_reads and db.get_bind().dialect.name == "postgresql":
                options["isolation_level"] = "AUTOCOMMIT"
            await db.connection(execution_options=options)
            yield db
        finally:
            await db.rollback()


async def db_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency (use with ``Depends(db_session, scope="function")``)."""
    async with unit_of_work() as db:
        yield db
