"""Readiness checks: database reachable, migrations current."""

from __future__ import annotations

import logging

from sqlalchemy import text

from connectx.db.engine import get_engine
from connectx.db.migrate import head_revisions

log = logging.getLogger(__name__)


async def check() -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with get_engine().connect() as conn:
            await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            try:
                current = await conn.execute(text("SELECT version_num FROM alembic_version"))
                revisions = frozenset(str(r) for r in current.scalars())
            except Exception:
                revisions = frozenset()
            heads = head_revisions()
            checks["migrations"] = (
                "ok"
                if revisions == heads
                else f"at {', '.join(sorted(revisions)) or 'none'}, "
                f"newest is {', '.join(sorted(heads))}: run migrate"
            )
    except Exception as exc:
        log.warning("readiness: database unreachable (%s)", type(exc).__name__)
        checks["database"] = f"unreachable ({type(exc).__name__})"
    return checks
