"""The database layer under the services: units of work and (on SQLite) the one-trip adapter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from connectx.config import get_settings
from connectx.db.session import read_only, unit_of_work


async def test_read_only_does_not_wait_for_a_writer() -> None:
    """A read-only unit of work reads while another transaction holds the write lock (SQLite:
    it begins DEFERRED, not IMMEDIATE), and what it wrote would not be kept."""
    async with unit_of_work() as db:
        await db.execute(text("CREATE TABLE IF NOT EXISTS t_ro (x integer)"))
    writer_in = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with unit_of_work() as db:
            await db.execute(text("INSERT INTO t_ro VALUES (1)"))
            writer_in.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await writer_in.wait()
    try:
        async with asyncio.timeout(5):  # a writer's BEGIN IMMEDIATE would wait 30 s here
            async with read_only() as db:
                seen = (await db.execute(text("SELECT count(*) FROM t_ro"))).scalar_one()
        assert seen == 0  # the writer has not committed
    finally:
        release.set()
        await task
    async with read_only() as db:
        assert (await db.execute(text("SELECT count(*) FROM t_ro"))).scalar_one() == 1
    async with unit_of_work() as db:
        await db.execute(text("DROP TABLE t_ro"))


async def test_statements_return_rows_counts_and_ids() -> None:
    """Rows, rowcount (also of an executemany) and lastrowid come back whole; an error is the
    driver's, mapped as before."""
    from sqlalchemy.exc import IntegrityError

    async with unit_of_work() as db:
        await db.execute(text("CREATE TABLE t_trip (id integer primary key, v text unique)"))
        conn = await db.connection()
        result = await conn.exec_driver_sql("INSERT INTO t_trip (id, v) VALUES (1, 'a')")
        if get_settings().is_sqlite:
            assert result.lastrowid == 1
        many = await db.execute(
            text("INSERT INTO t_trip (id, v) VALUES (:id, :v)"),
            [{"id": 2, "v": "b"}, {"id": 3, "v": "c"}, {"id": 4, "v": "d"}],
        )
        if get_settings().is_sqlite:  # (asyncpg reports no rowcount for an executemany)
            assert many.rowcount == 3
        updated = await db.execute(text("UPDATE t_trip SET v = v || '!' WHERE v != 'a'"))
        assert updated.rowcount == 3
        rows = (await db.execute(text("SELECT id, v FROM t_trip ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b!"), (3, "c!"), (4, "d!")]
        assert (await db.execute(text("SELECT v FROM t_trip WHERE id = 99"))).first() is None
    with pytest.raises(IntegrityError):
        async with unit_of_work() as db:
            await db.execute(text("INSERT INTO t_trip (id, v) VALUES (5, 'a')"))
    async with unit_of_work() as db:
        await db.execute(text("DROP TABLE t_trip"))


async def _noticed(driver: Any, within_s: float = 10.0) -> None:
    """Until the (pooled) asyncpg connection ``driver`` knows its socket was closed."""
    async with asyncio.timeout(within_s):
        while not driver.is_closed():
            await asyncio.sleep(0.01)


async def test_a_connection_the_server_closed_is_replaced_without_a_ping() -> None:
    """PostgreSQL: a pooled connection whose backend was terminated (a restart, an idle
    timeout) is replaced when it is checked out, and the unit of work runs normally; checking
    out a live one sends nothing (no ``pool_pre_ping`` round trip per unit of work)."""
    from sqlalchemy import event

    from connectx.db.engine import get_engine

    if get_settings().is_sqlite:
        pytest.skip("PostgreSQL's pool")
    import asyncpg

    engine = get_engine()
    async with unit_of_work() as db:  # the connection goes back to the pool
        victim = (await db.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        driver = (await (await db.connection()).get_raw_connection()).driver_connection
    seen: list[str] = []

    def statement(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        seen.append(sql)

    dialect = engine.sync_engine.dialect
    real_ping = dialect.do_ping
    pings: list[object] = []

    def ping(conn: object) -> bool:  # a spy: the real ping still runs
        pings.append(conn)
        return real_ping(conn)

    dialect.do_ping = ping  # type: ignore[method-assign]
    event.listen(engine.sync_engine, "before_cursor_execute", statement)
    try:
        outside = await asyncpg.connect(
            engine.url.set(drivername="postgresql").render_as_string(False)
        )
        try:
            assert await outside.fetchval("SELECT pg_terminate_backend($1)", victim)
        finally:
            await outside.close()
        # asyncpg notices the closed socket while the connection waits in the pool; wait for
        # that (not a fixed time: under load the event loop may take longer to see it).
        await _noticed(driver)
        seen.clear()
        for _ in range(3):  # whichever pooled connection comes out, it works
            async with unit_of_work() as db:
                assert (await db.execute(text("SELECT pg_backend_pid()"))).scalar_one() != victim
        assert seen == ["SELECT pg_backend_pid()"] * 3  # nothing else was sent
        assert pings == []  # and no ping
    finally:
        dialect.do_ping = real_ping  # type: ignore[method-assign]
        event.remove(engine.sync_engine, "before_cursor_execute", statement)


async def test_plain_reads_need_no_transaction_on_postgresql() -> None:
    """``read_only(plain_reads=True)`` (the page gate, every page view) runs its SELECTs without
    BEGIN and ROLLBACK round trips on PostgreSQL; the pooled connection then begins
    transactions as before. SQLite keeps its DEFERRED transaction."""
    if get_settings().is_sqlite:
        async with read_only(plain_reads=True) as db:
            assert (await db.execute(text("SELECT 1"))).scalar_one() == 1
        return
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query.split()[0].rstrip(";"))

    async def traced(plain: bool) -> None:
        async with read_only(plain_reads=plain) as db:
            conn = await db.connection()
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            driver.add_query_logger(log)
            try:
                assert (await db.execute(text("SELECT 1"))).scalar_one() == 1
                await db.rollback()  # what read_only() does at the end
            finally:
                driver.remove_query_logger(log)

    await traced(True)
    assert sent == []
    await traced(False)
    assert sent == ["BEGIN", "ROLLBACK"]


def test_migrations_run_on_a_plain_database_url(tmp_path: Any) -> None:
    """``connectx.db.migrate.upgrade("postgresql://…")`` (or ``sqlite:///…``) uses the installed
    async drivers, as the settings do: SQLAlchemy's defaults for those schemes (psycopg,
    pysqlite) are not async, or not installed."""
    from sqlalchemy import make_url

    from connectx.db.migrate import upgrade
    from tests.conftest import PG_NAME, TEST_PG

    if TEST_PG:
        from tests.support.databases import drop_postgres_database, fresh_postgres_database

        name = f"{PG_NAME}_plain"
        url = make_url(fresh_postgres_database(TEST_PG, name)).set(drivername="postgresql")
        try:
            upgrade(url.render_as_string(hide_password=False))
        finally:
            drop_postgres_database(TEST_PG, name)
    else:
        upgrade(f"sqlite:///{tmp_path / 'plain.db'}")
        assert (tmp_path / "plain.db").stat().st_size > 0
