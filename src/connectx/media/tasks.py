"""Background task ``media.download`` (ids only: the message id)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.jobs.registry import task
from connectx.media import service


@task(service.TASK)
async def download(db: AsyncSession, args: dict[str, Any]) -> None:
    await service.download(db, int(args["message_id"]))
