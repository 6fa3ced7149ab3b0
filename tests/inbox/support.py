"""Customers writing to a workspace, the way Meta delivers it (signed webhooks, processing)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from tests.whatsapp.support import PNID_A, WABA_A, connect, delivered, drain, for_number, load
from tests.workspaces.helpers import Caller

_seq = itertools.count(1)


def customer_message(
    name: str, wa_id: str, text: str = "Hello there", *, pnid: str = PNID_A, waba: str = WABA_A
) -> dict[str, Any]:
    n = next(_seq)
    payload = copy.deepcopy(load("message_text"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
    message = value["messages"][0]
    message.pop("from_user_id", None)
    message.update({"from": wa_id, "id": f"wamid.INBOX{n:06d}", "timestamp": str(1767225600 + n)})
    message["text"] = {"body": text}
    return for_number(payload, pnid, waba) if pnid != PNID_A else payload


async def customers_write(owner: Caller, *people: tuple[str, str], **number: str) -> list[int]:
    """Each (name, wa_id) writes once; the ids of their conversations, in that order."""
    for name, wa_id in people:
        await delivered(owner.client, customer_message(name, wa_id, **number))
    await drain()
    items = (await owner.get("/api/v1/conversations", params={"limit": 200})).json()["items"]
    by_phone = {c["contact"]["phone"]: c["id"] for c in items}
    return [int(by_phone["+" + wa_id]) for _, wa_id in people]


async def workspace_with_number(owner: Caller) -> int:
    return int((await connect(owner))["id"])
