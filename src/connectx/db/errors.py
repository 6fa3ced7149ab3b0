"""What a command line tells of a database error: its class and SQLSTATE, never its text (which
can quote a statement's values or a row's key)."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL answered with (``None`` for SQLite, or no answer at all)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def describe(exc: SQLAlchemyError) -> str:
    """``the database is not reachable (…)`` when it gave no answer (a connection that failed,
    a pool that timed out), else what it refused, by class and SQLSTATE."""
    code = sqlstate(exc)
    if code is None:
        return f"the database is not reachable ({type(exc).__name__})"
    return f"the database refused the operation ({type(exc).__name__}, SQLSTATE {code})"
