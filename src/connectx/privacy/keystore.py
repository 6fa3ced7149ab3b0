"""The key store: where wrapped keys live, apart from the data (docs/privacy-encryption.md).

* Embedded: its own SQLite file, ``<data dir>/keystore.db``, beside ``connectx.db``. Copying the
  data file copies no key material.
* PostgreSQL: the ``keystore`` schema of the same database by default (data backups exclude it:
  ``pg_dump --exclude-schema=keystore``), or a database of its own (``CONNECTX_KEYSTORE_URL``).

Key-store transactions are short and separate from the caller's data transaction: a key created
for a transaction that later rolls back is an unused key, and a destroyed key stays destroyed.
The schema is two small tables created on first use (``CREATE TABLE IF NOT EXISTS``).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.schema import CreateIndex, CreateTable

from connectx.config import Settings, get_settings
from connectx.db.engine import READ_ONLY, get_engine
from connectx.models.crypto_key import KeyStoreBase

SCHEMA = "keystore"
_SCHEMA_LOCK = 7_301_002  # PostgreSQL advisory-lock key serialising the schema's creation

_engines: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()
_ready: set[str] = set()


_url: tuple[Settings, str] | None = None  # the settings it was worked out from, the URL


def url() -> str:
    """The key store's URL, worked out once per settings object (it resolves file paths, and
    every key-store transaction asks)."""
    global _url
    settings = get_settings()
    if _url is not None and _url[0] is settings:
        return _url[1]
    value = settings.effective_keystore_url
    if settings.is_sqlite and value == settings.effective_database_url:
        raise RuntimeError(
            "CONNECTX_KEYSTORE_URL must not name the SQLite data file: the key store has to live "
            "apart from the data (leave it unset for <data dir>/keystore.db)"
        )
    _url = (settings, value)
    return value


def engine() -> AsyncEngine:
    """This event loop's engine for the key store (on PostgreSQL, unqualified table names resolve
    to the ``keystore`` schema)."""
    base = get_engine(url())
    eng = _engines.get(base)
    if eng is None:
        if base.dialect.name == "postgresql":
            eng = base.execution_options(schema_translate_map={None: SCHEMA})
        else:
            eng = base
        _engines[base] = eng
    return eng


async def ensure_schema() -> None:
    """Create the key store's tables if they are missing (idempotent, safe across processes)."""
    key = url()
    if key in _ready:
        return
    eng = engine()
    async with eng.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
            await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        for table in KeyStoreBase.metadata.sorted_tables:
            await conn.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                await conn.execute(CreateIndex(index, if_not_exists=True))
    _ready.add(key)


@asynccontextmanager
async def session(*, read_only: bool = False) -> AsyncIterator[AsyncSession]:
    """One short key-store transaction: commits on success, rolls back on error. ``read_only``:
    on SQLite it begins ``DEFERRED`` (a snapshot; no write lock taken or waited for); do not
    write in it."""
    await ensure_schema()
    async with AsyncSession(engine(), expire_on_commit=False) as db, db.begin():
        if read_only:
            await db.connection(execution_options={READ_ONLY: True})
        yield db


def describe() -> str:
    """Where the key store is, without credentials."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url())
    where = parsed.database or ""
    if parsed.get_backend_name() == "postgresql":
        return f"postgresql {parsed.host}:{parsed.port or 5432}/{where} schema {SCHEMA}"
    return f"sqlite {where}"


def tables() -> list[str]:
    return [t.name for t in KeyStoreBase.metadata.sorted_tables]
