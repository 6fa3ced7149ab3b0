"""The requests clock as periodic work (``privacy.requests_tick``, hourly): reminders to the
people deciding at 7 days and 1 day before a request is due, unverified requests lapsing, and
the overdue list mailed to the DPO once a day."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.jobs import periodic
from connectx.jobs.registry import task
from connectx.kit import clock
from connectx.models.data_request import DataRequest
from connectx.privacy.requests import deadlines, notices, service, timeline
from connectx.privacy.requests import repository as repo

log = logging.getLogger(__name__)

periodic.every("privacy.requests", "privacy.requests_tick", interval=timedelta(hours=1))

_COLUMNS = {"7d": DataRequest.reminded_7d_at, "1d": DataRequest.reminded_1d_at}


async def send_reminders(db: AsyncSession) -> int:
    """Remind the deciders of each verified open request entering its last 7 days and its last
    day; each reminder is sent once (compare-and-set on the request)."""
    now = clock.now()
    sent = 0
    for name, ahead in deadlines.REMINDERS:
        column = _COLUMNS[name]
        for req in await repo.due_for_reminder(db, column, now + ahead):
            if req.due_at <= now:
                continue  # already overdue: it is on the overdue list instead
            if not await repo.claim_reminder(db, req.id, column, now):
                continue
            left = deadlines.clock_of(req.due_at, now, req.extended_at is not None)
            await notices.tell_deciders(
                db,
                req,
                f"Reminder: privacy request {req.reference} is due {req.due_at:%Y-%m-%d}",
                f"The {req.kind} request {req.reference} must be answered by "
                f"{req.due_at:%Y-%m-%d %H:%M} UTC ({left.words}).\n\nOpen it: "
                f"{service.decider_link(req)}\n",
            )
            await timeline.add(db, req, f"reminder_{name}", "system")
            sent += 1
    return sent


async def tick(db: AsyncSession) -> dict[str, int]:
    reminders = await send_reminders(db)
    lapsed = await service.lapse_unverified(db)
    overdue = len(await repo.overdue(db, clock.now()))
    return {"reminders": reminders, "lapsed": lapsed, "overdue": overdue}


@task("privacy.requests_tick")
async def run(db: AsyncSession, args: dict[str, Any]) -> None:
    del args
    counts = await tick(db)
    log.info(
        "privacy requests: %s reminders, %s lapsed, %s overdue",
        counts["reminders"],
        counts["lapsed"],
        counts["overdue"],
    )


# An erasure waits (a little) for the last WhatsApp message to the person to leave the outbox:
# it is sealed under the key the erasure destroys.
ERASURE_WAITS_FOR_OUTBOX = timedelta(minutes=10)
RECHECK = timedelta(seconds=2)


@task("privacy.execute_request")
async def execute_request(db: AsyncSession, args: dict[str, Any]) -> None:
    """Carry out an approved request (access, portability, erasure). A refusal by the executor
    (bad parameters, a subject gone, a conflict) puts the request back for a decision and tells
    the deciders, instead of failing the job again and again."""
    from connectx.jobs.queue import enqueue
    from connectx.kit.errors import DomainError

    req = await repo.any_request(db, int(args["request_id"]))
    if req is None or req.status != "in_progress":
        return
    contact_id = notices.contact_id_of(req)
    if (
        req.kind == "erasure"
        and contact_id is not None
        and req.workspace_id is not None
        and req.decided_at is not None
        and clock.now() - req.decided_at < ERASURE_WAITS_FOR_OUTBOX
        and await repo.unsent_to_contact(db, req.workspace_id, contact_id)
    ):
        await enqueue(
            db,
            "privacy.execute_request",
            {"request_id": req.id},
            run_after=clock.now() + RECHECK,
            max_attempts=5,
        )
        return
    actor = req.decided_by or "system"
    try:
        async with db.begin_nested():
            await service.carry_out(db, req, actor=actor)
    except DomainError as exc:
        await db.refresh(req)  # its changes inside the savepoint were rolled back
        req.status = "pending"
        req.updated_at = clock.now()
        await timeline.add(db, req, "execution_failed", "system", {"problem": exc.code})
        await notices.tell_deciders(
            db,
            req,
            f"Privacy request {req.reference} could not be carried out",
            f"Carrying out the {req.kind} request {req.reference} failed: {exc.detail}\n\n"
            f"Open it: {service.decider_link(req)}\n",
        )
