"""Alembic environment: async engines, batch mode on SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

import connectx.models  # noqa: F401  (registers every table)
from connectx.db.base import Base
from connectx.db.engine import make_engine

config = context.config
target_metadata = Base.metadata


def _foreign_keys(connection: Connection, on: bool) -> None:
    """SQLite: switch foreign-key enforcement (the engine turns it on for every connection).
    Only possible outside a transaction, so it goes straight to the driver (no autobegin)."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, _other: Any) -> bool:
    """SQLite: ``webhook_events`` lives in the events file, whose schema is not Alembic's
    (connectx.db.events_file); autogenerate leaves it alone there."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return not (
        getattr(table, "name", None) == "webhook_events"
        and context.get_context().dialect.name == "sqlite"
    )


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
        include_object=include_object,
    )
    if sqlite and not connection.in_transaction():
        # A batch migration recreates a table (copy, drop, rename): with foreign keys on, the
        # drop would cascade into every table that refers to it. Off for the run, then every
        # reference is checked before the commit.
        _foreign_keys(connection, False)
        try:
            with context.begin_transaction():
                context.run_migrations()
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            _foreign_keys(connection, True)
        return
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = make_engine(config.attributes.get("database_url"))
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_main())


run()
