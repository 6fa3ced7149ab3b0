"""The simulator under test, for real: its ASGI app (lifespan running, so its aiohttp webhook
sender is live) spoken to over HTTP, and a real aiohttp server on loopback receiving its
webhooks and checking each signature over the exact bytes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from connectx.simulator.app import create_app
from connectx.simulator.core import Simulator
from connectx.simulator.settings import (
    DEMO_ACCESS_TOKEN,
    DEMO_APP_SECRET,
    DEMO_PHONE_NUMBER_ID,
    DEMO_VERIFY_TOKEN,
    DEMO_WABA_ID,
    build,
)

V = "v25.0"
PNID = DEMO_PHONE_NUMBER_ID
WABA = DEMO_WABA_ID
TOKEN = DEMO_ACCESS_TOKEN
SECRET = DEMO_APP_SECRET
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANA = "16505550101"  # a demo customer
BEN = "447700900123"


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signature_valid(self, secret: str = SECRET) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("X-Hub-Signature-256", ""))

    def changes(self) -> list[dict[str, Any]]:
        return [c for e in self.json["entry"] for c in e["changes"]]

    def messages(self) -> list[dict[str, Any]]:
        return [m for c in self.changes() for m in c["value"].get("messages", [])]

    def statuses(self) -> list[dict[str, Any]]:
        return [s for c in self.changes() for s in c["value"].get("statuses", [])]


@dataclass
class Receiver:
    """A real HTTP server on loopback standing in for the platform's webhook endpoint."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer next, then 200
    verify_token: str = DEMO_VERIFY_TOKEN
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            q = request.query
            if q.get("hub.mode") == "subscribe" and q.get("hub.verify_token") == self.verify_token:
                return web.Response(text=q.get("hub.challenge", ""))
            return web.Response(status=403)
        body = await request.read()
        self.received.append(Received(body, dict(request.headers)))
        self.arrived.set()
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status)

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        """Until at least ``n`` POSTs arrived."""
        async with asyncio.timeout(timeout):
            while len(self.received) < n:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received

    def all_messages(self) -> list[dict[str, Any]]:
        return [m for r in self.received for m in r.messages()]

    def all_statuses(self) -> list[dict[str, Any]]:
        return [s for r in self.received for s in r.statuses()]


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/webhooks/whatsapp", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
    try:
        yield rec
    finally:
        await runner.cleanup()


@dataclass
class Sim:
    client: httpx.AsyncClient
    simulator: Simulator
    receiver: Receiver

    async def send(
        self,
        body: dict[str, Any],
        *,
        token: str = TOKEN,
        pnid: str = PNID,
    ) -> httpx.Response:
        return await self.client.post(
            f"/{V}/{pnid}/messages",
            json={"messaging_product": "whatsapp", **body},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def text(self, to: str, body: str = "Hello", **kw: Any) -> httpx.Response:
        return await self.send({"to": to, "type": "text", "text": {"body": body}}, **kw)

    async def customer_says(self, who: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.client.post(
            f"/_sim/customers/{who}/messages", json=spec or {"type": "text", "text": "hi"}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def clock(self, **body: Any) -> dict[str, Any]:
        r = await self.client.post("/_sim/clock", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def settle(self) -> None:
        assert await self.simulator.dispatcher.settle(15), "webhooks still outstanding"


@asynccontextmanager
async def running(overrides: dict[str, Any] | None = None, **kw: Any) -> AsyncIterator[Sim]:
    """A simulator whose webhooks go to a fresh receiver; ``overrides`` are config settings."""
    async with receiver() as rec:
        settings = build(None, {"callback_url": rec.url, **(overrides or {})}, **kw)
        simulator = Simulator(settings)
        app = create_app(simulator=simulator)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as c:
                yield Sim(c, simulator, rec)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """Meta's error object, after checking it has every field Meta's has."""
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "error_subcode", "error_data", "fbtrace_id"}
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["error_data"]["details"]
    return dict(error)
