"""Scheduled backups in embedded mode (``backups.create``, daily, with rotation)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import Settings
from connectx.jobs import periodic
from connectx.jobs.registry import task

log = logging.getLogger(__name__)


def embedded(settings: Settings) -> bool:
    """One ``connectx serve`` on SQLite, no broker: the process that also keeps the backups."""
    return (
        settings.backup_schedule
        and settings.is_sqlite
        and not settings.broker_url
        and settings.embedded_worker
    )


periodic.every(
    "backups.daily",
    "backups.create",
    hour_utc=lambda settings: settings.backup_hour_utc,
    enabled=embedded,
)


@task("backups.create")
async def create(db: AsyncSession, args: dict[str, Any]) -> None:
    """Take a backup (data and key store), then keep only the newest CONNECTX_BACKUP_KEEP."""
    from connectx.backups import service

    data, _keys = await service.create(actor="system")
    removed = await service.rotate()
    log.info("scheduled backup %s taken; %s old backup files removed", data.stamp, len(removed))
