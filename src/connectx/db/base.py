"""Declarative base with naming conventions and the column types every model uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        return None if value is None else _as_utc(value)  # (SQLite: bind_processor below)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else _read_as_utc(value)

    # On SQLite, one conversion a value each way instead of this type's and then SQLAlchemy's
    # DATETIME (whose formatting through a dict of fields cost 4 µs a bound value and 2 a read
    # one; processing binds and reads several a webhook event): the same text, "YYYY-MM-DD
    # HH:MM:SS.ffffff" in UTC, so stored values and comparisons in SQL are unchanged.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return sqlite_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "sqlite":
            return _from_sqlite_text
        return super().result_processor(dialect, coltype)


def _as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is refused: whose time would it be?)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given; use connectx.kit.clock.now()")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _read_as_utc(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite's are naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as :class:`UTCDateTime` stores it on SQLite (for raw driver calls)."""
    if value is None:
        return None
    return _as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _from_sqlite_text(value: str | None) -> datetime | None:
    """Also reads what SQL wrote itself (``CURRENT_TIMESTAMP``: no fraction; a date alone; an
    ISO text with an offset)."""
    return None if value is None else _read_as_utc(datetime.fromisoformat(value))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# 64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit and autoincrements.
BigId = BigInteger().with_variant(Integer, "sqlite")

# Tables whose ids name people, their requests or what audit entries and data keys point at
# ("user:12", "contact:5", "dsr:3"): SQLite must never hand a deleted row's id to a new row, or
# the newcomer would inherit the erased one's consent records, acceptances and audit trail
# (PostgreSQL sequences never reuse). Migration 0004p rebuilt the existing tables.
NO_ID_REUSE: dict[str, Any] = {"sqlite_autoincrement": True}
