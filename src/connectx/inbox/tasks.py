"""Background parts of the inbox, loaded by every process that runs background work:

- the real-time listener of the webhook processor (:mod:`connectx.realtime.hooks`);
- ``inbox.wake_snoozed``: every minute, snoozed conversations whose time came are reopened;
- ``inbox.backfill_name_tokens``: name-search tokens for contacts named before name search
  existed (enqueued once by migration 0004ip when there are such contacts; a batch per job,
  each job enqueues the next).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.inbox import assignment, name_search
from connectx.jobs import periodic
from connectx.jobs.queue import enqueue
from connectx.jobs.registry import task
from connectx.realtime import hooks as _realtime_hooks  # noqa: F401 (registers the listener)

log = logging.getLogger(__name__)

periodic.every("inbox.wake_snoozed", "inbox.wake_snoozed", interval=timedelta(minutes=1))


@task("inbox.wake_snoozed")
async def wake_snoozed(db: AsyncSession, _args: dict[str, Any]) -> None:
    woken = await assignment.wake_due(db)
    if woken:
        log.info("woke %d snoozed conversations", woken)


@task("inbox.backfill_name_tokens")
async def backfill_name_tokens(db: AsyncSession, args: dict[str, Any]) -> None:
    last = await name_search.backfill(db, int(args.get("after", 0)), name_search.BACKFILL_BATCH)
    if last is not None:
        await enqueue(db, "inbox.backfill_name_tokens", {"after": last})
    else:
        log.info("name-search tokens backfilled")
