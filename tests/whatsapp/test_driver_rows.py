"""Processing writes its per-row statements its own way (on SQLite through the driver's
executemany; status events on PostgreSQL as arrays in one statement): what they store must be
what SQLAlchemy's typed statements stored (the same times, the same JSON, NULLs where they
were)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import select, text

from connectx.db import events_file
from connectx.db.session import unit_of_work
from connectx.intake import processor
from connectx.intake import repository as intake_repo
from connectx.kit.upsert import insert_ignore_many
from connectx.messages import repository as repo
from connectx.models.channel import Channel
from connectx.models.message import Message, MessageStatusEvent
from connectx.models.webhook_event import PROCESSED, WebhookEvent
from tests.whatsapp.support import delivered, load, rows
from tests.whatsapp.test_statuses import outbound

STORED = {  # the values as stored (text of times and JSON, SQL NULLs), not as read back
    "sqlite": "SELECT status, occurred_at, error_code, error_title, pricing, meta_conversation, "
    "callback_data, created_at, typeof(pricing), typeof(meta_conversation) "
    "FROM message_status_events WHERE wamid LIKE :prefix ORDER BY wamid",
    "postgresql": "SELECT status, occurred_at::text, error_code, error_title, pricing::text, "
    "meta_conversation::text, callback_data, created_at::text, pricing IS NULL, "
    "meta_conversation IS NULL FROM message_status_events WHERE wamid LIKE :prefix "
    "ORDER BY wamid",
}


CREATED = datetime(2026, 12, 6, 10, 0, 1, tzinfo=UTC)


def _variants(channel: Channel, prefix: str) -> list[dict[str, Any]]:
    at = datetime(2026, 12, 6, 10, 0, 0, 123, tzinfo=timezone(timedelta(hours=2)))
    base = {
        "workspace_id": channel.workspace_id,
        "channel_id": channel.id,
        "error_code": None,
        "error_title": None,
        "pricing": None,
        "meta_conversation": None,
        "callback_data": None,
        "created_at": CREATED,
    }
    return [
        {**base, "wamid": f"{prefix}1", "status": "sent", "occurred_at": at},
        {
            **base,
            "wamid": f"{prefix}2",
            "status": "delivered",
            "occurred_at": at.astimezone(UTC),
            "pricing": {"billable": False, "category": "service", "rate": 0.5, "n": None},
            "meta_conversation": {"id": "c1", "origin": {"type": "service"}},
        },
        {
            **base,
            "wamid": f"{prefix}3",
            "status": "failed",
            "occurred_at": at + timedelta(microseconds=1),
            "error_code": 131047,
            "error_title": "Re-engagement message ✓",
            "callback_data": "ab" * 16,
        },
    ]


async def test_status_events_are_stored_as_the_typed_insert_stored_them(
    channel: dict[str, Any],
) -> None:
    (number,) = await rows(Channel)
    async with unit_of_work() as db:
        stored = text(STORED[db.get_bind().dialect.name])
        await repo.add_status_events(db, _variants(number, "driver."))
        await db.execute(insert_ignore_many(db, MessageStatusEvent), _variants(number, "typed."))
        driver = (await db.execute(stored, {"prefix": "driver.%"})).all()
        typed = (await db.execute(stored, {"prefix": "typed.%"})).all()
        await repo.add_status_events(db, _variants(number, "driver."))  # repeats: skipped
    assert len(driver) == 3
    assert driver == typed
    found = await rows(MessageStatusEvent, MessageStatusEvent.wamid.like("driver.%"))
    assert sorted(e.occurred_at for e in found) == sorted(
        v["occurred_at"] for v in _variants(number, "x")
    )
    assert {e.wamid: e.pricing for e in found}["driver.2"] == {
        "billable": False,
        "category": "service",
        "rate": 0.5,
        "n": None,
    }


async def test_status_moves_and_finished_events_read_back_as_written(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    processor.stop_embedded()  # this test marks the delivered event done itself
    await outbound("wamid.driver-rows")
    await delivered(client, load("message_text"))
    (number,) = await rows(Channel)
    at = datetime(2026, 12, 6, 9, 30, 15, 250_001, tzinfo=UTC)
    move = {"wamid": "wamid.driver-rows", "status": "read", "rank": 3, "at": at}
    async with unit_of_work() as db:
        refs = await repo.advance_statuses(
            db,
            number.workspace_id,
            number.phone_number_id,
            [{**move, "error_code": None, "error_title": None}],
        )
        stale = {**move, "status": "delivered", "rank": 2, "at": at + timedelta(seconds=1)}
        await repo.advance_statuses(
            db,
            number.workspace_id,
            number.phone_number_id,
            [{**stale, "error_code": None, "error_title": None}],
        )
    assert [r[2] for r in refs] == ["read"]
    (message,) = await rows(Message, Message.wamid == "wamid.driver-rows")
    assert (message.status, message.status_rank, message.status_at) == ("read", 3, at)

    events = await rows(WebhookEvent)
    done = datetime(2026, 12, 6, 9, 31, tzinfo=timezone(timedelta(hours=-5)))
    async with events_file.session() if events_file.split() else unit_of_work() as db:
        await intake_repo.finish_many(
            db,
            [
                {
                    "event_id": e.id,
                    "status": PROCESSED,
                    "processed_at": done,
                    "items": 7,
                    "unrouted": 1,
                    "ignored": 2,
                    "progress": 7,
                }
                for e in events
            ],
        )
    async with unit_of_work() as db:
        found = (await db.execute(select(WebhookEvent))).scalars().all()
        assert found and all(
            (e.status, e.processed_at, e.items, e.unrouted, e.ignored, e.progress, e.held_for)
            == (PROCESSED, done, 7, 1, 2, 7, None)
            for e in found
        )
