"""Read what the platform mailed, straight from the (encrypted) outbox."""

from __future__ import annotations

import re

from connectx.db.session import unit_of_work
from connectx.mail import repository
from connectx.mail.service import OpenMail, open_message


async def outbox(to: str | None = None, kind: str | None = None) -> list[OpenMail]:
    """Messages, newest first, optionally only those to ``to`` and of ``kind``."""
    async with unit_of_work() as db:
        rows = await repository.latest(db, limit=500)
        opened = [await open_message(db, row) for row in rows]
    return [m for m in opened if (to is None or m.to == to) and (kind is None or m.kind == kind)]


def first_link(body: str) -> str:
    match = re.search(r"https?://\S+", body)
    assert match, "no link in the message"
    return match.group(0)
