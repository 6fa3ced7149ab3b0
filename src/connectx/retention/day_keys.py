"""Raw-webhook day keys past the raw-body retention, destroyed on schedule.

Raw webhook bodies are sealed under one platform key per day (``webhook_day:<date>``) and kept
live as an inspection copy for the ``jobs`` period (14 days by default): the ``webhook_events``
rule deletes the rows, but a backup taken meanwhile keeps its copy, readable as long as the day's
key exists. So once a day lies wholly before the period's cutoff and none of its raw bodies is
still live (a pending, held or failed event keeps its day's key), the retention run destroys the
key: that day's raw bodies become unreadable in every backup (crypto-shredding). Each batch of
days is audited with counts (``retention.deleted``) and the key ids (``keys.subject_destroyed``,
so ``connectx keys reapply-erasures`` destroys them again after a key-store restore).

Legal holds: a day key is shared by every workspace and person whose webhooks arrived that day,
so while any legal hold is active no day key is destroyed (they are reported as held).
"""

from __future__ import annotations

from datetime import datetime

from connectx.audit import service as audit
from connectx.db.session import unit_of_work
from connectx.kit.inventory import Retention
from connectx.privacy.rights import raw_webhooks
from connectx.retention.ledgers import Ledger
from connectx.retention.rules import destroy_keys

NAME = "webhook_day_keys"


def _before(cutoff: datetime) -> str:
    """Days before this one (``YYYY-MM-DD``) ended before ``cutoff``."""
    return f"{cutoff:%Y-%m-%d}"


async def count(cutoff: datetime) -> tuple[int, int]:
    """(day keys due, day keys kept by legal holds)."""
    async with unit_of_work() as db:
        idle = await raw_webhooks.idle_days(db, _before(cutoff))
    return len(idle.due), len(idle.held)


async def destroy(cutoff: datetime, batch: int, actor: str) -> int:
    """Destroy the keys of up to ``batch`` due days; how many days (0: none left, or held)."""
    async with unit_of_work() as db:
        days = (await raw_webhooks.idle_days(db, _before(cutoff))).due[:batch]
        if not days:
            return 0
        destroyed = await destroy_keys(db, [(None, day) for day in days])
        await audit.record(
            db,
            actor=actor,
            action="retention.deleted",
            data={
                "rule": NAME,
                "table": "crypto_keys",
                "class": str(Retention.JOBS),
                "count": len(days),
                **destroyed,
            },
        )
    return len(days)


STEP = Ledger(
    NAME,
    "crypto_keys",
    Retention.JOBS,
    count,
    destroy,
    "keys of raw-webhook days past the raw-body retention (backups' copies become unreadable)",
)
