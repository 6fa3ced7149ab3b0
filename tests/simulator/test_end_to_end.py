"""Simulator -> the platform's /webhooks/whatsapp -> stored: the real platform served by uvicorn on
loopback, a number connected through its API with the simulator's demo credentials, and
simulated customers writing to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectx.simulator import settings as sim_settings
from tests.simulator.support import Sim, running
from tests.support.served import PLATFORM, served
from tests.whatsapp.support import channel_body, drain
from tests.workspaces.helpers import Caller, owner_of


@pytest.fixture
async def platform_url(app: Any) -> AsyncIterator[str]:
    """The platform app (its lifespan already running) served over real HTTP, as
    ``connectx serve`` serves it."""
    async with served(app, **PLATFORM) as url:
        yield url


@pytest.fixture
async def owner(app: Any) -> AsyncIterator[Caller]:
    caller, _ = await owner_of(app)
    yield caller
    await caller.client.aclose()


async def connect_demo_number(owner: Caller) -> dict[str, Any]:
    body = channel_body(
        sim_settings.DEMO_PHONE_NUMBER_ID,
        sim_settings.DEMO_WABA_ID,
        sim_settings.DEMO_DISPLAY_NUMBER,
        app_id=sim_settings.DEMO_APP_ID,
        secret=sim_settings.DEMO_APP_SECRET,
        verify_token=sim_settings.DEMO_VERIFY_TOKEN,
        token=sim_settings.DEMO_ACCESS_TOKEN,
        name="Simulator",
    )
    r = await owner.post("/api/v1/channels", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def conversation_messages(owner: Caller) -> dict[str, list[dict[str, Any]]]:
    """Each contact's stored messages (by phone or, when hidden, by name), oldest first."""
    r = await owner.get("/api/v1/conversations")
    assert r.status_code == 200, r.text
    out: dict[str, list[dict[str, Any]]] = {}
    for conversation in r.json()["items"]:
        m = await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")
        assert m.status_code == 200, m.text
        key = conversation["contact"]["phone"] or conversation["contact"]["name"]
        out[key] = list(reversed(m.json()["items"]))
    return out


async def settled(sim: Sim) -> None:
    await sim.settle()
    deliveries = (await sim.client.get("/_sim/webhooks", params={"body": "0"})).json()["data"]
    assert deliveries and all(d["last_status"] == 200 for d in deliveries), deliveries


async def test_customers_chatting_through_the_simulator_are_stored(
    owner: Caller, platform_url: str
) -> None:
    await connect_demo_number(owner)
    callback = f"{platform_url}/webhooks/whatsapp"
    async with running({"callback_url": callback, "statuses": {"progress": "none"}}) as sim:
        r = await sim.client.post("/_sim/verify", json={})
        assert r.json()["ok"] is True, r.json()  # the platform's handshake accepts the app
        ana = await sim.customer_says("16505550101", {"type": "text", "text": "Hello shop"})
        await sim.client.post("/phone/c1/send", data={"text": "Is my parcel on its way?"})
        await sim.customer_says(
            "16505550101", {"type": "location", "latitude": 38.7, "longitude": -9.1, "name": "Home"}
        )
        await sim.customer_says(
            "16505550101", {"type": "reaction", "message_id": ana["wamid"], "emoji": "👍"}
        )
        await sim.customer_says("BR.10000000000000000199", {"type": "text", "text": "oi"})
        await settled(sim)
        await drain()
        stored = await conversation_messages(owner)
        ana_messages = stored["+16505550101"]
        # Messages are ordered by Meta's timestamp (whole seconds); separate webhooks of the same
        # second may be stored in either order, as Meta does not order its deliveries either.
        [first] = [m for m in ana_messages if m["wamid"] == ana["wamid"]]
        assert sorted(m["body"] for m in ana_messages if m["type"] == "text") == [
            "Hello shop",
            "Is my parcel on its way?",
        ]
        assert any(m["type"] == "location" for m in ana_messages)
        assert first["reaction"] == "👍"  # applied to the message reacted to
        [reaction] = [m for m in ana_messages if m["type"] == "reaction"]
        assert reaction["target_wamid"] == ana["wamid"]
        assert all(m["direction"] == "in" for m in ana_messages)
        carla = stored["Carla Quiet"]  # a username user: no phone reached the platform
        assert [m["body"] for m in carla] == ["oi"]
        # a repeated delivery is stored once; a forged signature is refused
        await sim.customer_says("16505550101", {"type": "text", "text": "again", "duplicate": True})
        await settled(sim)
        await drain()
        stored = await conversation_messages(owner)
        assert [m["body"] for m in stored["+16505550101"]].count("again") == 1
        r = await sim.client.post(
            "/_sim/webhooks",
            json={
                "payload": {"object": "whatsapp_business_account", "entry": []},
                "signature": "sha256=" + "00" * 32,
            },
        )
        forged_id = r.json()["id"]
        async with asyncio.timeout(10):
            while True:
                deliveries = (await sim.client.get("/_sim/webhooks", params={"body": "0"})).json()
                forged = next(d for d in deliveries["data"] if d["id"] == forged_id)
                if forged["attempts"] and forged["state"] != "pending":
                    break
                await asyncio.sleep(0.05)
        assert forged["last_status"] == 401 and forged["state"] == "retrying"
