"""Shared steps of the WhatsApp tests: connect numbers, send signed webhooks like Meta, and wait
until what was stored has been processed."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from connectx.db.session import unit_of_work
from connectx.integrations.whatsapp.signature import sign
from tests.workspaces.helpers import Caller

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"

APP_ID = "1234567890123456"
APP_SECRET = "6f1d0c5e9b2a4c7d8e3f1a2b3c4d5e6f"
VERIFY_TOKEN = "cx-verify-7Qm2"
WABA_A, PNID_A, DISPLAY_A = "102290129340398", "106540352242922", "+15550783881"
WABA_B, PNID_B, DISPLAY_B = "102290129340399", "106540352242923", "+15550783882"
CUSTOMER_PHONE = "+16505551234"
CUSTOMER_BSUID = "US.13491208655302741918"


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((CORPUS / f"{name}.json").read_text()))


def corpus(prefix: str = "") -> list[str]:
    return sorted(p.stem for p in CORPUS.glob(f"{prefix}*.json"))


def for_number(payload: dict[str, Any], pnid: str, waba: str | None = None) -> dict[str, Any]:
    """The same payload addressed to another phone number id (and WABA)."""
    out = copy.deepcopy(payload)
    for entry in out["entry"]:
        if waba:
            entry["id"] = waba
        for change in entry["changes"]:
            meta = change["value"].get("metadata")
            if meta:
                meta["phone_number_id"] = pnid
    return out


def batch(*payloads: dict[str, Any]) -> dict[str, Any]:
    """Several webhook bodies as one POST: their entries side by side."""
    return {
        "object": "whatsapp_business_account",
        "entry": [entry for p in payloads for entry in copy.deepcopy(p)["entry"]],
    }


def sent_statuses(prefix: str, n: int) -> dict[str, Any]:
    """One POST with ``n`` "sent" callbacks of outbound messages of our own, ids ``prefix.i``."""
    payload = copy.deepcopy(load("statuses_out_of_order"))
    value = payload["entry"][0]["changes"][0]["value"]
    template = value["statuses"][1]
    value["statuses"] = [{**template, "id": f"{prefix}.{i}", "status": "sent"} for i in range(n)]
    return payload


def messages_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        m
        for entry in payload["entry"]
        for change in entry["changes"]
        for m in change["value"].get("messages", [])
    ]


def channel_body(
    pnid: str = PNID_A,
    waba: str = WABA_A,
    display: str = DISPLAY_A,
    *,
    app_id: str = APP_ID,
    secret: str = APP_SECRET,
    verify_token: str | None = VERIFY_TOKEN,
    token: str = "EAAG-test-access-token-0001",
    name: str | None = "Sales",
) -> dict[str, Any]:
    body = {
        "name": name,
        "phone_number_id": pnid,
        "display_phone_number": display,
        "waba_id": waba,
        "access_token": token,
        "app_id": app_id,
        "app_secret": secret,
    }
    if verify_token is not None:
        body["verify_token"] = verify_token
    return body


async def connect(owner: Caller, **kw: Any) -> dict[str, Any]:
    r = await owner.post("/api/v1/channels", json=channel_body(**kw))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliver(
    client: httpx.AsyncClient,
    payload: dict[str, Any] | bytes,
    secret: str = APP_SECRET,
    *,
    signature: str | None = None,
) -> httpx.Response:
    """POST a webhook the way Meta does: raw bytes, signed with the app secret."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = signature if signature is not None else sign(secret, body)
    return await client.post("/webhooks/whatsapp", content=body, headers=headers)


async def delivered(client: httpx.AsyncClient, payload: dict[str, Any] | bytes) -> None:
    r = await deliver(client, payload)
    assert r.status_code == 200, r.text


async def event_counts() -> dict[str, int]:
    from connectx.models.webhook_event import WebhookEvent

    async with unit_of_work() as db:
        rows = await db.execute(
            select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
        )
        return {status: int(n) for status, n in rows.all()}


async def drain(timeout_s: float = 30.0) -> dict[str, int]:
    """Process until no event is pending (with the app's own processor running beside us, or
    not); returns the events by status."""
    from connectx.intake.processor import process_available

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        await process_available()
        counts = await event_counts()
        if not counts.get("pending"):
            return counts
        if loop.time() > deadline:
            raise AssertionError(f"events still pending after {timeout_s}s: {counts}")
        await asyncio.sleep(0.05)


async def rows(model: Any, *where: Any, order_by: Any = None) -> list[Any]:
    async with unit_of_work() as db:
        stmt = select(model).where(*where)
        if order_by is not None:
            stmt = stmt.order_by(order_by)
        return list((await db.execute(stmt)).scalars())


async def count(model: Any, *where: Any) -> int:
    async with unit_of_work() as db:
        stmt = select(func.count()).select_from(model).where(*where)
        return int((await db.execute(stmt)).scalar_one())


async def inbound_for(owner: Caller) -> dict[str, int]:
    """Ids of a channel, a conversation and a contact in ``owner``'s workspace, made the way
    they are in production (a connected number, a signed webhook, processing). For walks such as
    tests/test_tenant_isolation.py."""
    channels = (await owner.get("/api/v1/channels")).json()["items"]
    channel_id = channels[0]["id"] if channels else (await connect(owner))["id"]
    conversations = (await owner.get("/api/v1/conversations")).json()["items"]
    if not conversations:
        await delivered(owner.client, load("message_text"))
        await drain()
        conversations = (await owner.get("/api/v1/conversations")).json()["items"]
    conversation = conversations[0]
    return {
        "channel_id": int(channel_id),
        "conversation_id": int(conversation["id"]),
        "contact_id": int(conversation["contact"]["id"]),
    }
