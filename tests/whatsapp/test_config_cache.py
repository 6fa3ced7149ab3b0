"""Processors keep live channels, suspended workspaces and keyword matchers between
transactions, and read one value instead: the ``processing`` generation, which triggers replace
on any change to ``channels``, ``workspace_suspensions`` or ``consent_keywords`` (whoever makes
it). A change is seen by the next transaction. (Suspensions: tests/whatsapp/test_suspension.py;
keywords changed between messages: tests/privacy/test_keywords.py.)"""

from __future__ import annotations

import copy
from typing import Any

import httpx
from sqlalchemy import event, text

from connectx.db.engine import get_engine
from connectx.db.session import read_only, unit_of_work
from connectx.intake import processor
from connectx.intake import repository as repo
from connectx.models.channel import Channel
from connectx.models.message import Message
from connectx.models.webhook_event import WebhookEvent
from tests.retention.support import run_cli
from tests.whatsapp.support import count, delivered, drain, load, rows
from tests.workspaces.helpers import Caller


async def _generation() -> int | None:
    async with read_only() as db:
        return await repo.processing_generation(db)


def _message(n: int) -> dict[str, Any]:
    payload = copy.deepcopy(load("message_text"))
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.cache.{n}"
    return payload


async def test_any_change_to_the_watched_tables_gives_a_new_generation(
    owner: Caller, channel: dict[str, Any]
) -> None:
    seen = [await _generation()]
    assert seen[0] is not None
    r = await owner.client.put(  # consent_keywords
        "/api/v1/workspace/consent/keywords",
        headers=owner.h,
        json={
            "languages": [
                {
                    "language": "en",
                    "stop": ["HALT"],
                    "start": ["GO"],
                    "stop_reply": "Stopped.",
                    "start_reply": "Started.",
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    seen.append(await _generation())
    (stored,) = await rows(Channel, Channel.id == channel["id"])
    ws = stored.workspace_id
    assert (await run_cli("admin", "suspend-workspace", str(ws), "--reason", "t")).exit_code == 0
    seen.append(await _generation())
    assert (await run_cli("admin", "lift-suspension", str(ws))).exit_code == 0
    seen.append(await _generation())
    async with unit_of_work() as db:  # by hand, bypassing every service: still seen
        await db.execute(
            text("UPDATE channels SET name = 'renamed' WHERE id = :id"), {"id": channel["id"]}
        )
    seen.append(await _generation())
    assert (await owner.delete(f"/api/v1/channels/{channel['id']}")).status_code == 204
    seen.append(await _generation())
    assert None not in seen and len(set(seen)) == len(seen)


async def test_once_kept_a_transaction_reads_none_of_them(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    processor.stop_embedded()
    read: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        flat = " ".join(statement.split())
        if "webhook_events" in flat:  # (the claim skips events held for suspended workspaces)
            return
        for table in ("channels", "workspace_suspensions", "consent_keywords"):
            if flat.startswith("SELECT") and f"FROM {table}" in flat:
                read.append(table)

    engine = get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await delivered(client, _message(1))
        await processor.process_available()
        assert sorted(set(read)) == ["channels", "consent_keywords", "workspace_suspensions"]
        read.clear()
        await delivered(client, _message(2))
        await processor.process_available()
        assert read == []  # (was all three again)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert await count(Message) == 2


async def test_a_channel_disconnected_after_it_was_kept_is_not_used(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    processor.stop_embedded()
    await delivered(client, _message(1))
    assert await drain() == {"processed": 1}
    async with unit_of_work() as db:  # (the API would retire the app too: no 200 then)
        await db.execute(
            text(
                "UPDATE channels SET status = 'disconnected', disconnected_at = updated_at "
                "WHERE id = :id"
            ),
            {"id": channel["id"]},
        )
    await delivered(client, _message(2))
    assert await drain() == {"processed": 2}
    last = (await rows(WebhookEvent, order_by=WebhookEvent.id))[-1]
    assert last.unrouted == 1  # no live channel for the number any more
    assert await count(Message) == 1
