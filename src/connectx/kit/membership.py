"""``column IN (values)`` as each database does it best, for the processor's batch look-ups.

SQLAlchemy renders an ``IN`` of a list as one placeholder per value when the statement is run:
the SQL text differs with the list's length, so on PostgreSQL every new length is a statement
asyncpg has not prepared (a parse on the server and an extra round trip) and SQLAlchemy rebuilds
the placeholders every time (a fifth of the processor's batch look-ups' CPU). On PostgreSQL the
list goes as one array parameter instead (``column = ANY($1::type[])``): one statement text
whatever the length, prepared once. SQLite has no arrays: the ``IN`` stays there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession


def one_of(db: AsyncSession, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (which must not be empty)."""
    found = list(values)
    if db.get_bind().dialect.name == "postgresql":
        array = bindparam(None, found, type_=ARRAY(column.type))
        condition: ColumnElement[bool] = column == any_(array)
        return condition
    return column.in_(found)
