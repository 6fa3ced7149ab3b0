"""The platform served by uvicorn and the simulator served by uvicorn, both on loopback: the
pacer's aiohttp client speaks real HTTP to the simulator, whose signed webhooks reach the
platform's intake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from connectx.config import reset_settings
from connectx.simulator import settings as sim_settings
from connectx.simulator.app import create_app as create_sim_app
from connectx.simulator.core import Simulator
from tests.support.served import PLATFORM, served
from tests.whatsapp.support import channel_body, drain
from tests.workspaces.helpers import Caller, owner_of


@dataclass
class World:
    owner: Caller
    sim: httpx.AsyncClient
    simulator: Simulator
    channel: dict[str, Any]
    sim_url: str = ""

    async def customer_says(self, who: str, text: str = "hi") -> str:
        r = await self.sim.post(
            f"/_sim/customers/{who}/messages", json={"type": "text", "text": text}
        )
        assert r.status_code == 201, r.text
        await self.settle()
        return str(r.json()["wamid"])

    async def settle(self) -> None:
        assert await self.simulator.dispatcher.settle(15)
        await drain()

    async def conversation_of(self, phone: str) -> int:
        r = await self.owner.get("/api/v1/conversations")
        for c in r.json()["items"]:
            if c["contact"]["phone"] == phone:
                return int(c["id"])
        raise AssertionError(f"no conversation with {phone}")

    async def sent(self, n: int, timeout: float = 15.0, **query: Any) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while True:
                r = await self.sim.get("/_sim/sent", params=query)
                data = list(r.json()["data"])
                if len(data) >= n:
                    return data
                await asyncio.sleep(0.05)

    async def message(self, conversation_id: int, message_id: int) -> dict[str, Any]:
        r = await self.owner.get(f"/api/v1/conversations/{conversation_id}/messages")
        return next(m for m in r.json()["items"] if m["id"] == message_id)

    async def until(
        self, conversation_id: int, message_id: int, status: str, timeout: float = 15.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                await drain()
                m = await self.message(conversation_id, message_id)
                if m["status"] == status:
                    return m
                await asyncio.sleep(0.05)

    async def stats(self) -> dict[str, Any]:
        return dict((await self.sim.get("/_sim/stats")).json())


@contextlib.asynccontextmanager
async def world_on(
    app: Any, monkeypatch: pytest.MonkeyPatch, **sim_overrides: Any
) -> AsyncIterator[World]:
    """The platform ``app`` and a simulator, both served on loopback, with the simulator's demo
    number connected to a new workspace."""
    async with contextlib.AsyncExitStack() as stack:
        platform_url = await stack.enter_async_context(served(app, **PLATFORM))
        settings = sim_settings.build(
            None,
            {
                "callback_url": f"{platform_url}/webhooks/whatsapp",
                "statuses": {"delay_ms": 20},
                **sim_overrides,
            },
        )
        simulator = Simulator(settings)
        sim_app = create_sim_app(simulator=simulator)
        await stack.enter_async_context(sim_app.router.lifespan_context(sim_app))
        sim_url = await stack.enter_async_context(served(sim_app))
        monkeypatch.setenv("CONNECTX_GRAPH_BASE_URL", sim_url)
        reset_settings()
        caller, _ = await owner_of(app)
        stack.push_async_callback(caller.client.aclose)
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
        r = await caller.post("/api/v1/channels", json=body)
        assert r.status_code == 201, r.text
        sim = await stack.enter_async_context(httpx.AsyncClient(base_url=sim_url))
        yield World(caller, sim, simulator, dict(r.json()), sim_url)


@pytest.fixture
async def world(app: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async with world_on(app, monkeypatch) as found:
        yield found
