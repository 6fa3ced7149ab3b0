"""Raw webhooks go 14 days (the ``jobs`` period) after they are finished, however they finished:
processed, processed with updates for an unknown number, flagged malformed, or parked as failed.
A pending one (still work to do) stays whatever its age."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.intake import processor
from connectx.intake import repository as intake_repo
from connectx.kit import clock
from connectx.models.webhook_event import WebhookEvent
from tests.retention.support import events, run_cli
from tests.whatsapp.support import PNID_B, WABA_B, connect, delivered, drain, for_number, load
from tests.workspaces.helpers import owner_of


async def _events() -> dict[int, tuple[str, int]]:
    async with unit_of_work() as db:
        rows = await db.execute(select(WebhookEvent.id, WebhookEvent.status, WebhookEvent.unrouted))
        return {i: (status, unrouted) for i, status, unrouted in rows.all()}


async def _park_as_failed(event_id: int) -> None:
    """What the processor does to an event that failed on its own too often."""
    async with unit_of_work() as db:
        await intake_repo.record_failure(db, event_id, "RuntimeError", 1, clock.now())


async def test_finished_raw_webhooks_of_every_kind_go_after_the_jobs_period(app: Any) -> None:
    owner, _ = await owner_of(app)
    await connect(owner)
    processor.stop_embedded()
    await delivered(owner.client, load("message_text"))  # processed
    await delivered(owner.client, b'{"not json')  # malformed
    await delivered(owner.client, for_number(load("message_text"), PNID_B, WABA_B))  # unrouted
    await drain()
    first = await _events()
    assert sorted(s for s, _ in first.values()) == ["malformed", "processed", "processed"]
    assert sum(u for _, u in first.values()) == 1

    # A day later one event fails on its own until it is parked (its body kept for inspection).
    clock.advance(timedelta(days=1))
    await delivered(owner.client, for_number(load("message_text"), PNID_B, WABA_B))
    [failing] = set(await _events()) - set(first)
    await _park_as_failed(failing)
    assert (await _events())[failing][0] == "failed"

    # 14 days after the first ones finished: they go; the failed one (parked a day later) stays.
    clock.advance(timedelta(days=13, hours=1))
    result = await run_cli("retention", "run", "--no-progress")
    assert result.exit_code == 0, result.output
    assert set(await _events()) == {failing}

    # A pending event is never due, however old: the processor has not finished it.
    await delivered(owner.client, for_number(load("message_text"), PNID_B, WABA_B))
    [pending] = set(await _events()) - {failing}
    clock.advance(timedelta(days=30))
    assert (await run_cli("retention", "run", "--no-progress")).exit_code == 0
    assert set(await _events()) == {pending}
    assert (await _events())[pending][0] == "pending"

    removed = sum(
        e.data["count"]
        for e in await events("retention.deleted")
        if e.data["rule"] == "webhook_events"
    )
    assert removed == 4
