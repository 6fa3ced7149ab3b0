"""Shared steps of the requests tests."""

from __future__ import annotations

import copy
import re
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.data_request import DataRequest, DataRequestEvent
from tests.support.mail import outbox
from tests.whatsapp.support import load, messages_of

_n = 0


async def request_row(reference: str) -> DataRequest:
    async with unit_of_work() as db:
        stmt = select(DataRequest).where(DataRequest.reference == reference)
        return (await db.execute(stmt)).scalar_one()


async def all_requests() -> list[DataRequest]:
    async with unit_of_work() as db:
        return list((await db.execute(select(DataRequest).order_by(DataRequest.id))).scalars())


async def actions(request_id: int) -> list[str]:
    async with unit_of_work() as db:
        stmt = (
            select(DataRequestEvent.action)
            .where(DataRequestEvent.request_id == request_id)
            .order_by(DataRequestEvent.id)
        )
        return list((await db.execute(stmt)).scalars())


def reference_in(html: str) -> str:
    match = re.search(r"R-[2-9A-Z]{8}", html)
    assert match, "no request reference on the page"
    return match.group(0)


async def mailed_code(to: str) -> str:
    mails = await outbox(to=to, kind="privacy_request_code")
    assert mails, f"no code mailed to {to}"
    match = re.search(r"\b(\d{6})\b", mails[0].body)
    assert match
    return match.group(1)


def text_message(body: str, sender: str = "16505551234") -> dict[str, Any]:
    """A customer's text webhook sent now (the 24-hour window is open)."""
    global _n
    _n += 1
    payload = copy.deepcopy(load("message_text"))
    message = messages_of(payload)[0]
    message["text"]["body"] = body
    message["id"] = f"wamid.DSR{_n}"
    message["timestamp"] = str(int(clock.now().timestamp()))
    message["from"] = sender
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    return payload
