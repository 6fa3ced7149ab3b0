"""Tasks used by the jobs tests. Imported directly by in-process tests and through
``CONNECTX_TASK_MODULES=["tests.jobs.tasks"]`` by ``connectx worker`` subprocesses.

The effect of a test job is a row in an existing table: a mail sent through
``connectx.mail.service.send`` (kind ``test.effect``, one per job number ``n``).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.jobs import runner
from connectx.jobs.registry import task
from connectx.mail import service as mail

EFFECT_KIND = "test.effect"


async def effect(db: AsyncSession, n: int) -> None:
    await mail.send(
        db,
        to=f"job{n}@example.com",
        subject=f"effect of job {n}",
        body=f"job {n} ran",
        kind=EFFECT_KIND,
        subject_ref=f"jobtest:{n}",
    )


def _mark(marker: str | None) -> None:
    """Append one line per started attempt, so a test knows a job is mid-way."""
    if marker:
        with Path(marker).open("a") as fh:
            fh.write(f"{os.getpid()}\n")


async def _wait_for_gate(gate: str | None, max_wait: float) -> None:
    if not gate:
        return
    deadline = time.monotonic() + max_wait
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        await asyncio.sleep(0.05)


@task("testjobs.record")
async def record(db: AsyncSession, args: dict[str, Any]) -> None:
    """Write the effect, then (or before, with ``write_first`` false) wait for ``gate``."""
    n = int(args["n"])
    write_first = bool(args.get("write_first", False))
    if write_first:
        await effect(db, n)
    _mark(args.get("marker"))
    await _wait_for_gate(args.get("gate"), float(args.get("max_wait", 120)))
    if not write_first:
        await effect(db, n)


@task("testjobs.flaky")
async def flaky(db: AsyncSession, args: dict[str, Any]) -> None:
    """Fails on its first ``fail_times`` attempts, with personal data in the message."""
    job = runner.current()
    assert job is not None
    if job.attempt <= int(args["fail_times"]):
        raise ValueError("could not reach ada.lovelace@example.com at +44 20 7946 0958")
    await effect(db, int(args["n"]))


@task("testjobs.boom")
async def boom(db: AsyncSession, args: dict[str, Any]) -> None:
    await effect(db, int(args["n"]))  # rolled back with the failure
    raise RuntimeError("secret token=abc123 for grace@example.com")
