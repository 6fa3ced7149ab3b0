"""The daily retention run as a background job (``retention.run``), scheduled by the runtime."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import get_settings
from connectx.jobs import periodic
from connectx.jobs.queue import enqueue
from connectx.jobs.registry import task
from connectx.retention import service

log = logging.getLogger(__name__)

periodic.every(
    "retention.daily", "retention.run", hour_utc=lambda settings: settings.retention_hour_utc
)


@task("retention.run")
async def run(db: AsyncSession, args: dict[str, Any]) -> None:
    """One pass within the job's lease (each batch commits on its own); if the lease would run
    out first, a continuation job picks up where this one stopped."""
    budget = max(1.0, get_settings().job_lease_s * 0.6)
    report = await service.run(deadline=time.monotonic() + budget)
    log.info(
        "retention run: %s rows removed, %s held, %s",
        report.removed,
        report.held,
        "complete" if report.complete else "continuing",
    )
    if not report.complete:
        part = int(args.get("part", 1)) + 1
        await enqueue(db, "retention.run", {"part": part}, max_attempts=3)
