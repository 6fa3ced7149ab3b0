"""Helpers of the privacy and audit tests: the CLI as operators run it, data backups taken and
restored the way an operator would (the data database only: the key store is not part of it),
and raw SQL as someone with database access would type it."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

import connectx.models  # noqa: F401
from connectx.config import get_settings
from connectx.db.base import Base
from connectx.db.engine import dispose_engines, get_engine
from connectx.privacy import keystore

CONNECTX = str(Path(sys.executable).with_name("connectx"))


@dataclass
class Run:
    code: int
    out: str
    err: str


async def cli(*args: str, env: dict[str, str] | None = None) -> Run:
    """Run ``connectx <args>`` in its own process (as an operator would, beside the app)."""
    proc = await asyncio.create_subprocess_exec(
        CONNECTX,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def cli_here(*args: str) -> Run:
    """Run ``connectx <args>`` in this process (a worker thread), for commands whose point is not
    to run beside the service: faster than a new process on a busy machine."""
    from typer.testing import CliRunner

    from connectx.cli import app

    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def is_postgres() -> bool:
    return not get_settings().is_sqlite


def tree_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


async def backup_bytes(unpacked: Path) -> bytes:
    """What an unsealed backup (``backups.service._unseal``) holds, as plain bytes: the SQLite
    file, or the dump as SQL (sealed values as hex), and its media."""
    if not is_postgres():
        return tree_bytes(unpacked)
    proc = await asyncio.create_subprocess_exec(
        "pg_restore",
        "--data-only",
        "-f",
        "-",
        str(unpacked / "database.pgdump"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    media = unpacked / "media"
    return out + (tree_bytes(media) if media.exists() else b"")


def _sqlite_path() -> str:
    database = make_url(get_settings().effective_database_url).database
    assert database
    return database


def _pg_dsn() -> str:
    url = make_url(get_settings().effective_database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def data_tables() -> list[str]:
    """The data database's tables in dependency order (what a data backup holds)."""
    return [t.name for t in Base.metadata.sorted_tables]


async def take_data_backup() -> Any:
    """A copy of the data database: the SQLite file (through SQLite's online-backup API, which
    copies a live file consistently), or every data table on PostgreSQL (COPY, binary)."""
    if not is_postgres():
        copy = sqlite3.connect(":memory:")
        with sqlite3.connect(_sqlite_path()) as live:
            live.backup(copy)
        return copy
    conn = await asyncpg.connect(_pg_dsn())
    try:
        dump: dict[str, bytes] = {}
        for table in data_tables():
            buf = io.BytesIO()
            await conn.copy_from_table(table, output=buf, format="binary")
            dump[table] = buf.getvalue()
        return dump
    finally:
        await conn.close()


async def restore_data_backup(backup: Any) -> None:
    """Put a data backup back in place of the current data database."""
    await dispose_engines()
    if not is_postgres():
        with sqlite3.connect(_sqlite_path()) as live:
            backup.backup(live)
        return
    conn = await asyncpg.connect(_pg_dsn())
    try:
        async with conn.transaction():
            await conn.execute(f"TRUNCATE {', '.join(data_tables())} CASCADE")
            for table in data_tables():
                await conn.copy_to_table(table, source=io.BytesIO(backup[table]), format="binary")
    finally:
        await conn.close()


async def take_keystore_backup() -> Any:
    """The key store's own backup (taken by the operator on its own schedule)."""
    from connectx.privacy import keystore

    await keystore.ensure_schema()
    if not is_postgres():
        copy = sqlite3.connect(":memory:")
        path = make_url(keystore.url()).database
        assert path
        with sqlite3.connect(path) as live:
            live.backup(copy)
        return copy
    conn = await asyncpg.connect(_pg_dsn())
    try:
        dump: dict[str, bytes] = {}
        for table in keystore.tables():
            buf = io.BytesIO()
            await conn.copy_from_table(
                table, schema_name=keystore.SCHEMA, output=buf, format="binary"
            )
            dump[table] = buf.getvalue()
        return dump
    finally:
        await conn.close()


async def restore_keystore_backup(backup: Any) -> None:
    from connectx.privacy import keystore

    await dispose_engines()
    if not is_postgres():
        path = make_url(keystore.url()).database
        assert path
        with sqlite3.connect(path) as live:
            backup.backup(live)
        return
    conn = await asyncpg.connect(_pg_dsn())
    try:
        async with conn.transaction():
            names = ", ".join(f"{keystore.SCHEMA}.{t}" for t in keystore.tables())
            await conn.execute(f"TRUNCATE {names}")
            for table in keystore.tables():
                await conn.copy_to_table(
                    table,
                    schema_name=keystore.SCHEMA,
                    source=io.BytesIO(backup[table]),
                    format="binary",
                )
    finally:
        await conn.close()


async def database_bytes() -> bytes:
    """Everything the databases hold as an attacker with the disks or a dump would see it: the
    SQLite files (data and key store, with their write-ahead logs), or ``pg_dump``'s output."""
    if not is_postgres():
        await dispose_engines()
        from connectx.privacy import keystore

        blobs = []
        for url in (get_settings().effective_database_url, keystore.url()):
            path = make_url(url).database
            assert path
            for suffix in ("", "-wal"):
                p = Path(path + suffix)
                if p.exists():
                    blobs.append(p.read_bytes())
        return b"\n".join(blobs)
    proc = await asyncio.create_subprocess_exec(
        "pg_dump",
        "--data-only",
        "--no-owner",
        _pg_dsn(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out


async def raw_sql(
    *statements: str, unguarded: tuple[str, ...] = (), params: dict[str, Any] | None = None
) -> None:
    """Run SQL directly on the data database, as someone with database access. ``unguarded``
    tables have their append-only triggers lifted first (what an attacker would do)."""
    engine = get_engine()
    async with engine.begin() as conn:
        saved: list[tuple[str, str]] = []
        if unguarded:
            if engine.dialect.name == "postgresql":
                for table in unguarded:
                    await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                names = ", ".join(f"'{t}'" for t in unguarded)
                rows = await conn.execute(
                    text(
                        "SELECT name, sql FROM sqlite_master "
                        f"WHERE type = 'trigger' AND tbl_name IN ({names})"
                    )
                )
                saved = [(r[0], r[1]) for r in rows]
                for name, _ in saved:
                    await conn.execute(text(f'DROP TRIGGER "{name}"'))
        for statement in statements:
            await conn.execute(text(statement), params or {})
        if engine.dialect.name == "postgresql":
            for table in unguarded:
                await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        for _, sql in saved:
            await conn.exec_driver_sql(sql)


class KeyStoreStatements:
    """Counts the statements sent to the key store (call ``keystore.ensure_schema()`` first)."""

    def __init__(self) -> None:
        self.count = 0
        self.engine = keystore.engine().sync_engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def retire_webhook_keys() -> None:
    """Let the key cache TTL pass and run the erasure's ``privacy.retire_webhook_key`` job (or
    wait for the app's own runner, if it took it already)."""
    from connectx.jobs import runner
    from connectx.kit import clock
    from connectx.models.job import Job
    from connectx.privacy.rights import raw_webhooks
    from tests.whatsapp.support import rows

    clock.advance(timedelta(seconds=get_settings().key_cache_ttl_s + 61))
    [job] = await rows(Job, Job.name == raw_webhooks.TASK)
    await runner.run_job(job.id)
    async with asyncio.timeout(20):
        while (await rows(Job, Job.id == job.id))[0].status != "done":
            await asyncio.sleep(0.05)
