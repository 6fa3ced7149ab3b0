"""Alembic, driven from code (``connectx migrate``, tests, readiness)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option(
        "file_template",
        "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s",
    )
    if url:
        cfg.attributes["database_url"] = url
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """Every head (several while branches await a merge migration)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade(url: str | None = None, revision: str = "heads") -> None:
    """Bring the database to ``revision``. Runs its own event loop: call from sync code."""
    command.upgrade(alembic_config(url), revision)
