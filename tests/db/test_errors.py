"""What a command line says of a database error: its class and SQLSTATE, never its text."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from connectx.config import get_settings
from connectx.db import errors
from connectx.db.session import unit_of_work


async def test_no_answer_is_not_reachable(tmp_path: object) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    with pytest.raises(SQLAlchemyError) as caught:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    await engine.dispose()
    assert errors.describe(caught.value) == "the database is not reachable (OperationalError)"


async def test_a_refusal_names_its_sqlstate_and_nothing_of_the_statement() -> None:
    if get_settings().is_sqlite:
        pytest.skip("SQLite answers without an SQLSTATE")
    with pytest.raises(SQLAlchemyError) as caught:
        async with unit_of_work() as db:
            await db.execute(text("SELECT 'secret-value'::int"))
    said = errors.describe(caught.value)
    assert said == "the database refused the operation (DBAPIError, SQLSTATE 22P02)"
    assert "secret" not in said
