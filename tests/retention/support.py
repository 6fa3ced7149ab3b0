"""Shared steps of the retention tests: the real CLI, row counts, audit events, idle jobs."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from connectx.cli import app as cli
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.media import store as media_store
from connectx.models.audit import AuditEvent
from connectx.models.contact import Contact
from connectx.models.job import Job
from connectx.models.media import MediaFile
from connectx.models.message import Message
from tests.whatsapp.support import PNID_B, WABA_B, delivered, drain, load
from tests.workspaces.helpers import Caller


async def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """``connectx …`` in a thread (its own event loop, as from a shell)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def count(model: Any, *where: Any) -> int:
    async with unit_of_work() as db:
        stmt = select(func.count()).select_from(model)
        if where:
            stmt = stmt.where(*where)
        return int((await db.execute(stmt)).scalar_one())


async def events(action: str) -> list[AuditEvent]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list((await db.execute(stmt)).scalars())


async def jobs_settled(timeout: float = 15) -> None:
    """Wait until no job is pending or running (the embedded worker ran them)."""
    for _ in range(int(timeout / 0.05)):
        busy = await count(Job, Job.status.in_(("pending", "running")))
        if busy == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("background jobs did not finish")


async def media_file(workspace_id: int, message_id: int) -> tuple[int, Path]:
    """A downloaded media file of the message, as the media store keeps it."""
    async with unit_of_work() as db:
        message = (await db.execute(select(Message).where(Message.id == message_id))).scalar_one()
        key = f"ws-{workspace_id}/m{message_id}.sealed"
        path = media_store.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"sealed bytes")
        now = clock.now()
        row = MediaFile(
            workspace_id=workspace_id,
            message_id=message_id,
            contact_id=message.contact_id,
            state="stored",
            mime_type="image/jpeg",
            size=12,
            sha256="ab" * 32,
            storage_key=key,
            created_at=now,
            updated_at=now,
            stored_at=now,
        )
        db.add(row)
        await db.flush()
        return row.id, path


_wn = 0


async def customer_writes(
    owner: Caller, phone: str, name: str, *, number_b: bool = False
) -> Contact:
    """The customer ``phone`` writes now to number A (or B) of ``owner``'s workspace (a signed
    webhook, processed); returns the contact."""
    global _wn
    _wn += 1
    payload = copy.deepcopy(load("message_text"))
    value = payload["entry"][0]["changes"][0]["value"]
    if number_b:
        value["metadata"]["phone_number_id"] = PNID_B
        payload["entry"][0]["id"] = WABA_B
    value["contacts"] = [{"profile": {"name": name}, "wa_id": phone}]
    [message] = value["messages"]
    message.pop("from_user_id", None)
    message.update(
        {"from": phone, "id": f"wamid.RET{_wn}", "timestamp": str(int(clock.now().timestamp()))}
    )
    await delivered(owner.client, payload)
    await drain()
    async with unit_of_work() as db:
        return (
            await db.execute(
                select(Contact)
                .join(Message, Message.contact_id == Contact.id)
                .where(Message.wamid == f"wamid.RET{_wn}")
            )
        ).scalar_one()


async def contact_row(contact_id: int) -> Contact:
    async with unit_of_work() as db:
        return (await db.execute(select(Contact).where(Contact.id == contact_id))).scalar_one()
