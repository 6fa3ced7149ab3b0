"""Template sync jobs: ``templates.sync`` (one number's WABA: after it is connected, or when a
webhook names a template not known yet) and ``templates.sync_all`` (every few hours, every
connected number's WABA once)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.jobs import periodic
from connectx.jobs.registry import task
from connectx.kit.errors import Conflict
from connectx.models.channel import Channel
from connectx.outbound import repository as repo
from connectx.templates_wa import service

log = logging.getLogger(__name__)

SYNC_EVERY = timedelta(hours=6)

periodic.every("templates.sync_all", "templates.sync_all", interval=SYNC_EVERY)


@task("templates.sync")
async def sync(db: AsyncSession, args: dict[str, Any]) -> None:
    channel = await db.get(Channel, int(args["channel_id"]))
    if channel is None or channel.disconnected_at is not None:
        return
    try:
        await service.sync_channel(db, channel, "system:templates")
    except Conflict as exc:  # no token, or Meta refused: the next scheduled sync tries again
        log.warning("template sync of channel %s refused: %s", channel.id, type(exc).__name__)


@task("templates.sync_all")
async def sync_all(db: AsyncSession, args: dict[str, Any]) -> None:
    for channel in await repo.connected_channels(db):
        await service.enqueue_sync(db, channel.id)
