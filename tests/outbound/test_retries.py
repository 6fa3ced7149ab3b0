"""Retry classes against faults the simulator injects."""

from __future__ import annotations

import asyncio

import pytest

from connectx.outbound import pacer
from tests.outbound.conftest import World

ANA = "16505550101"
ANA_E164 = "+16505550101"


async def test_rate_limit_retried_window_error_final_token_pauses(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacer, "BACKOFF_BASE_S", 0.05)
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    await world.sim.post("/_sim/faults", json={"code": 130429, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "one"}
    )
    first = r.json()["id"]
    await world.until(conv, first, "read")  # retried after 130429, sent once
    await world.sim.post("/_sim/faults", json={"code": 131047, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "two"}
    )
    m = await world.until(conv, r.json()["id"], "failed")
    assert m["error"]["code"] == 131047
    await world.sim.post("/_sim/faults", json={"code": 190, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "three"}
    )
    third = r.json()["id"]
    async with asyncio.timeout(15):
        while True:
            s = (await world.owner.get(f"/api/v1/channels/{world.channel['id']}/sending")).json()
            if s["paused"]:
                break
            await asyncio.sleep(0.05)
    assert s["pause_code"] == 190
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": "four"}
    )
    assert r.status_code == 409
    r = await world.owner.client.put(
        f"/api/v1/channels/{world.channel['id']}/sending",
        json={"resume": True},
        headers=world.owner.h,
    )
    assert r.status_code == 200 and r.json()["paused"] is False
    await world.until(conv, third, "read")  # kept, then sent after resuming
    stats = await world.stats()
    assert stats["repeated_callback_data"] == 0
