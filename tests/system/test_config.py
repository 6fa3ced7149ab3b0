"""Settings: database URLs as PostgreSQL's and SQLite's own tools write them work."""

from __future__ import annotations

import pytest

from connectx.config import Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/cx",
            "postgresql+asyncpg://postgres@127.0.0.1:5432/cx",
        ),
        ("postgres://u:p@db/cx", "postgresql+asyncpg://u:p@db/cx"),
        ("postgresql+asyncpg://u@db/cx", "postgresql+asyncpg://u@db/cx"),
        ("sqlite:////srv/cx.db", "sqlite+aiosqlite:////srv/cx.db"),
        ("sqlite+aiosqlite:////srv/cx.db", "sqlite+aiosqlite:////srv/cx.db"),
    ],
)
def test_database_urls_get_the_async_driver(given: str, used: str) -> None:
    settings = Settings(database_url=given, keystore_url=given)
    assert settings.effective_database_url == used
    assert settings.effective_keystore_url == used
    assert settings.is_sqlite == used.startswith("sqlite")
