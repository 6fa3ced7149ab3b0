"""Retry classes against faults the simulator injects."""

from __future__ import annotations

import asyncio

import pytest

from connectx.outbound import pacer
from tests.outbound.conftest import World

ANA = "16505550101"


@pytest.mark.parametrize(
    ("code", "http_status", "kind"),
    [
        (130429, 400, "retry"),
        (None, 429, "retry"),  # a bare 429 (a proxy, no Meta body) was final: the message failed
        (1, 429, "retry"),
        (None, 503, "retry"),
        (131016, 0, "retry"),
        (131047, 400, "final"),
        (None, 400, "final"),
        (190, 401, "token"),
        (190, 429, "token"),
    ],
)
def test_error_classes(code: int | None, http_status: int, kind: str) -> None:
    assert pacer.classify(code, http_status) == kind


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


async def test_pair_rate_and_server_errors_retried_template_error_final(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacer, "BACKOFF_BASE_S", 0.05)
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    ids = []
    for fault, text in (({"code": 131056}, "pair"), ({"http_status": 503}, "five-oh-three")):
        await world.sim.post("/_sim/faults", json={**fault, "count": 1})
        r = await world.owner.post(
            f"/api/v1/conversations/{conv}/messages", json={"type": "text", "text": text}
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
        m = await world.until(conv, ids[-1], "read", timeout=60)  # retried, then sent once
        assert m["error"] is None or m["error"]["code"] is None
    r = await world.owner.post(f"/api/v1/channels/{world.channel['id']}/templates/sync")
    assert r.status_code == 200, r.text
    await world.sim.post("/_sim/faults", json={"code": 132001, "count": 1})
    r = await world.owner.post(
        f"/api/v1/conversations/{conv}/messages",
        json={
            "type": "template",
            "template": {
                "name": "order_update",
                "body": ["Ana", "A-1"],
                "buttons": [{"index": 0, "parameter": "A-1"}],
            },
        },
    )
    assert r.status_code == 202, r.text
    m = await world.until(conv, r.json()["id"], "failed", timeout=60)  # not retried
    assert m["error"]["code"] == 132001 and m["error"]["title"]
    stats = await world.stats()
    assert stats["rejected"] == {"131056": 1, "131016": 1, "132001": 1}, stats
    assert stats["accepted"] == 2 and stats["repeated_callback_data"] == 0
