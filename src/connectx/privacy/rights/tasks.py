"""Background work of the rights executors."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.jobs.registry import task
from connectx.privacy.rights import notices, raw_webhooks


@task(notices.TASK)
async def notify_recipient(db: AsyncSession, args: dict[str, Any]) -> None:
    await notices.deliver(db, int(args["notice_id"]))


@task(raw_webhooks.TASK)
async def retire_webhook_key(db: AsyncSession, args: dict[str, Any]) -> None:
    key_ids = [int(k) for k in args["key_ids"]]
    actor = str(args.get("actor", "system"))
    await raw_webhooks.finish(db, str(args["subject"]), key_ids, actor)
