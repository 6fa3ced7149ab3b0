"""``sqlite_driver.commit_made``: a group of rows in one multi-row INSERT, all or nothing, made
and written on the database's thread."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import aiosqlite
import pytest

from connectx.db import sqlite_driver

INSERT = "INSERT INTO t (n, body) SELECT column1, column2"


@pytest.fixture
async def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    connection = await aiosqlite.connect(tmp_path / "x.db", isolation_level=None)
    await connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER UNIQUE, body BLOB)")
    yield connection
    await connection.close()


async def _limit_variables(conn: aiosqlite.Connection, limit: int) -> None:
    await conn._execute(conn._conn.setlimit, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)


def test_statements_come_in_a_few_padded_sizes() -> None:
    sizes = {sqlite_driver.padded_size(n) for n in range(1, 257)}
    assert sizes == {1, 2, 4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 256}
    assert all(sqlite_driver.padded_size(n) >= n for n in range(1, 600))
    assert sqlite_driver._rows_sql(INSERT, 2, 2) == (
        INSERT + " FROM (VALUES (?, ?), (?, ?)) WHERE column1 IS NOT NULL"
    )


@pytest.mark.parametrize("count", [1, 7, 33, 128, 300])
async def test_every_row_is_stored_once_in_order(conn: aiosqlite.Connection, count: int) -> None:
    rows = [(n, bytes([n % 256]) * 3 if n % 5 else None) for n in range(count)]
    await sqlite_driver.commit_made(conn, INSERT, lambda: rows)
    async with conn.execute("SELECT n, body FROM t ORDER BY id") as cursor:
        assert [tuple(r) for r in await cursor.fetchall()] == rows  # (no padding row stored)
    assert not conn.in_transaction


async def test_one_statement_commits_the_group_on_its_own(
    conn: aiosqlite.Connection, tmp_path: Path
) -> None:
    statements: list[str] = []
    await conn.set_trace_callback(statements.append)
    await sqlite_driver.commit_made(conn, INSERT, lambda: [(n, b"x") for n in range(100)])
    assert len(statements) == 1 and statements[0].startswith("INSERT")
    other = sqlite3.connect(tmp_path / "x.db")  # committed: another connection sees them
    assert other.execute("SELECT count(*) FROM t").fetchone() == (100,)


async def test_a_group_over_the_variable_limit_is_split_in_one_transaction(
    conn: aiosqlite.Connection,
) -> None:
    await _limit_variables(conn, 99)  # 49 rows a statement
    statements: list[str] = []
    await conn.set_trace_callback(statements.append)
    rows = [(n, b"x") for n in range(120)]
    await sqlite_driver.commit_made(conn, INSERT, lambda: rows)
    assert [s.split()[0] for s in statements] == ["BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]
    async with conn.execute("SELECT n FROM t ORDER BY id") as cursor:
        assert [r[0] for r in await cursor.fetchall()] == list(range(120))


@pytest.mark.parametrize("limit", [None, 99])  # one statement; split in several
async def test_a_failing_row_stores_nothing_of_the_group(
    conn: aiosqlite.Connection, limit: int | None
) -> None:
    if limit:
        await _limit_variables(conn, limit)
    rows = [(n, b"x") for n in range(200)] + [(5, b"repeat")]  # the last row
    with pytest.raises(sqlite3.IntegrityError):
        await sqlite_driver.commit_made(conn, INSERT, lambda: rows)
    async with conn.execute("SELECT count(*) FROM t") as cursor:
        assert (await cursor.fetchone()) == (0,)
    assert not conn.in_transaction


async def test_an_open_transaction_is_refused(conn: aiosqlite.Connection) -> None:
    await conn.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="no open transaction"):
        await sqlite_driver.commit_made(conn, INSERT, lambda: [(1, b"x")])


async def test_the_rows_are_made_on_the_database_thread(conn: aiosqlite.Connection) -> None:
    made: list[int] = []

    def make() -> list[tuple[int, bytes]]:
        made.append(threading.get_ident())
        return [(1, b"x")]

    await sqlite_driver.commit_made(conn, INSERT, make)
    assert len(made) == 1 and made[0] != threading.get_ident()
    async with conn.execute("SELECT n FROM t") as cursor:
        assert [r[0] for r in await cursor.fetchall()] == [1]
