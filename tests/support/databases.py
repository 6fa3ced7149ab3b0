"""Create, drop and empty test databases."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection


def _admin(server_url: str, *statements: str) -> None:
    url = make_url(server_url)

    async def run() -> None:
        conn = await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            database="postgres",
        )
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def drop_postgres_database(server_url: str, name: str) -> None:
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_postgres_database(server_url: str, name: str) -> str:
    """Drop and re-create ``name`` on the server of ``server_url``; return its SQLAlchemy URL."""
    _admin(
        server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def empty_all_tables() -> None:
    import connectx.models  # noqa: F401
    from connectx.db.base import Base
    from connectx.db.engine import get_engine
    from connectx.privacy import keystore

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    engine = get_engine()
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await _empty_postgres(conn, tables, "public")
        else:
            # The append-only tables' triggers refuse DELETE: lift them for the cleanup only.
            triggers = (
                await conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type='trigger'"))
            ).all()
            for name, _ in triggers:
                await conn.execute(text(f'DROP TRIGGER "{name}"'))
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))
            # Ids start again at 1, as RESTART IDENTITY does on PostgreSQL (test harness only:
            # the AUTOINCREMENT tables never reuse an id otherwise).
            await conn.execute(text("DELETE FROM sqlite_sequence"))
            for _, sql in triggers:
                await conn.exec_driver_sql(sql)
        # Processing's cache generation (migration 0008p), emptied with the rest: a new one, so
        # nothing a processor kept from the last test is taken for this test's.
        await conn.execute(
            text("INSERT INTO config_generations (name, value) VALUES ('processing', :value)"),
            {"value": secrets.randbits(62)},
        )
    await keystore.ensure_schema()
    async with keystore.engine().begin() as conn:
        if conn.dialect.name == "postgresql":
            await _empty_postgres(conn, keystore.tables(), keystore.SCHEMA)
        else:
            for table in reversed(keystore.tables()):
                await conn.execute(text(f"DELETE FROM {table}"))


async def _empty_postgres(conn: AsyncConnection, tables: list[str], schema: str) -> None:
    """Empty ``tables`` and restart their sequences, in one round trip.

    DELETE with triggers off (``session_replication_role = replica``: the append-only triggers
    and the foreign keys' triggers do not fire) rather than TRUNCATE: a test leaves a few rows,
    and TRUNCATE gives every table and index a new file, ~230 ms a test for ~80 tables."""
    sequences = (
        await conn.execute(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = :schema"
            ),
            {"schema": schema},
        )
    ).scalars()
    script = ["SET LOCAL session_replication_role = replica"]
    script += [f'DELETE FROM "{schema}"."{table}"' for table in tables]
    # setval, not ALTER SEQUENCE ... RESTART (which writes the sequence a new file too).
    script += [f'SELECT setval(\'"{schema}"."{sequence}"\', 1, false)' for sequence in sequences]
    raw = await conn.get_raw_connection()
    await raw.driver_connection.execute(";\n".join(script))  # type: ignore[union-attr]
