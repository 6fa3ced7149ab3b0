"""Templates stay current: fetched when a number is connected, on a schedule and on demand, and
moved by Meta's template webhooks (status with the reason, quality, category)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connectx.config import reset_settings
from connectx.db.session import unit_of_work
from connectx.jobs import periodic
from connectx.kit import clock
from connectx.models.job import Job
from connectx.simulator import settings as sim_settings
from tests.outbound.conftest import World

WABA = sim_settings.DEMO_WABA_ID
ANA = "16505550101"
ANA_E164 = "+16505550101"


async def templates(world: World) -> dict[str, dict[str, Any]]:
    r = await world.owner.get(f"/api/v1/channels/{world.channel['id']}/templates")
    assert r.status_code == 200, r.text
    return {t["name"]: t for t in r.json()}


async def until(world: World, name: str, **expected: Any) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            await world.settle()
            found = (await templates(world)).get(name)
            if found is not None and all(found[k] == v for k, v in expected.items()):
                return found
            await asyncio.sleep(0.05)


async def meta_says(world: World, field: str, value: dict[str, Any]) -> None:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "time": 1767225600, "changes": [{"field": field, "value": value}]}],
    }
    r = await world.sim.post("/_sim/webhooks", json={"payload": payload})
    assert r.status_code == 202, r.text


async def test_connecting_a_number_fetches_its_templates(world: World) -> None:
    found = await until(world, "order_update", status="APPROVED")
    assert found["category"] == "UTILITY" and found["reason"] is None


async def test_template_webhooks_move_status_reason_quality_and_category(world: World) -> None:
    await until(world, "order_update", status="APPROVED")
    r = await world.sim.post(
        f"/_sim/templates/{WABA}/order_update/status",
        json={"status": "REJECTED", "reason": "INVALID_FORMAT"},
    )
    assert r.status_code == 200, r.text
    rejected = await until(world, "order_update", status="REJECTED")
    assert rejected["reason"] == "INVALID_FORMAT"
    # a send of it is refused before queueing, saying why
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"type": "template", "template": {"name": "order_update", "body": ["A", "B"]}},
    )
    assert r.status_code == 422 and "INVALID_FORMAT" in r.json()["detail"], r.text

    template_id = rejected["id"]
    meta_id = (await templates(world))["order_update"]
    assert template_id == meta_id["id"]
    hello = (await templates(world))["hello_world"]
    await meta_says(
        world,
        "message_template_status_update",
        {
            "event": "PAUSED",
            "message_template_id": 0,
            "message_template_name": "hello_world",
            "message_template_language": hello["language"],
            "reason": "NONE",
            "other_info": {
                "title": "FIRST_PAUSE",
                "description": "Paused for 3 hours because of low quality.",
            },
        },
    )
    paused = await until(world, "hello_world", status="PAUSED")
    assert paused["reason"] == "FIRST_PAUSE; Paused for 3 hours because of low quality."
    await meta_says(
        world,
        "message_template_quality_update",
        {
            "previous_quality_score": "GREEN",
            "new_quality_score": "RED",
            "message_template_id": 0,
            "message_template_name": "hello_world",
            "message_template_language": hello["language"],
        },
    )
    await until(world, "hello_world", quality="RED")
    await meta_says(
        world,
        "template_category_update",
        {
            "message_template_id": 0,
            "message_template_name": "hello_world",
            "message_template_language": hello["language"],
            "previous_category": "UTILITY",
            "new_category": "MARKETING",
        },
    )
    await until(world, "hello_world", category="MARKETING")
    await meta_says(
        world,
        "message_template_status_update",
        {
            "event": "REINSTATED",
            "message_template_id": 0,
            "message_template_name": "hello_world",
            "message_template_language": hello["language"],
            "reason": "NONE",
        },
    )
    back = await until(world, "hello_world", status="APPROVED")
    assert back["reason"] is None


async def test_scheduled_sync_fetches_every_numbers_templates(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await until(world, "order_update", status="APPROVED")
    monkeypatch.setenv("CONNECTX_PERIODIC_TASKS", "true")
    reset_settings()
    assert "templates.sync_all" in {s.name for s in periodic.schedules()}
    # Meta gained a template this platform heard nothing about (no webhook)
    world.simulator.add_template(
        sim_settings.TemplateConfig(
            waba_id=WABA,
            name="spring_note",
            components=[{"type": "BODY", "text": "Spring is here."}],
        )
    )
    await periodic.tick()  # first sight of the schedule: its first run is set 6 h ahead
    clock.advance(timedelta(hours=6, minutes=1))
    await periodic.tick()
    found = await until(world, "spring_note")
    assert found["status"] == "APPROVED"
    async with unit_of_work() as db:
        names = set((await db.execute(select(Job.name))).scalars())
    assert {"templates.sync_all", "templates.sync"} <= names
