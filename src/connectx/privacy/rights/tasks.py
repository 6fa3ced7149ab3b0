"""Background work of the rights executors."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.jobs.registry import task
from connectx.privacy.rights import notices


@task(notices.TASK)
async def notify_recipient(db: AsyncSession, args: dict[str, Any]) -> None:
    await notices.deliver(db, int(args["notice_id"]))
