"""``sqlite_driver.commit_many``: a group of rows in a few multi-row INSERTs, all or nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from connectx.db import sqlite_driver

INSERT = "INSERT INTO t (n, body) VALUES (?, ?)"


@pytest.fixture
async def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    connection = await aiosqlite.connect(tmp_path / "x.db", isolation_level=None)
    await connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER UNIQUE, body BLOB)")
    yield connection
    await connection.close()


def test_groups_go_in_as_powers_of_two_within_the_variable_limit() -> None:
    db = sqlite3.connect(":memory:")
    assert sqlite_driver._chunks(db, 11, 300) == [256, 32, 8, 4]
    assert sqlite_driver._chunks(db, 11, 1) == [1]
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    assert sqlite_driver._chunks(db, 11, 100) == [64, 32, 4]  # 999 // 11 = 90 rows at most
    assert sqlite_driver._rows_sql(INSERT, 2) == INSERT + ", (?, ?)"


@pytest.mark.parametrize("count", [1, 7, 128, 300])
async def test_every_row_is_stored_once_in_order(conn: aiosqlite.Connection, count: int) -> None:
    rows = [(n, bytes([n % 256]) * 3) for n in range(count)]
    await sqlite_driver.commit_many(conn, INSERT, rows)
    async with conn.execute("SELECT n, body FROM t ORDER BY id") as cursor:
        assert [tuple(r) for r in await cursor.fetchall()] == rows


async def test_a_failing_row_stores_nothing_of_the_group(conn: aiosqlite.Connection) -> None:
    rows = [(n, b"x") for n in range(200)] + [(5, b"repeat")]  # in the last statement
    with pytest.raises(sqlite3.IntegrityError):
        await sqlite_driver.commit_many(conn, INSERT, rows)
    async with conn.execute("SELECT count(*) FROM t") as cursor:
        assert (await cursor.fetchone()) == (0,)
    assert not conn.in_transaction
