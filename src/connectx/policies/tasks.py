"""Background tasks of policies: e-mail account holders about a material change, in batches."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.jobs.queue import enqueue
from connectx.jobs.registry import task
from connectx.policies import service


@task("policies.notify")
async def notify(db: AsyncSession, args: dict[str, Any]) -> None:
    """One batch per job (its mails commit with it); a follow-up job takes the next batch."""
    version_id = int(args["version_id"])
    last = await service.notify_batch(db, version_id, int(args.get("after_user_id", 0)))
    if last is not None:
        await enqueue(db, "policies.notify", {"version_id": version_id, "after_user_id": last})
