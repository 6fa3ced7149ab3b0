"""Shared steps of the workspace tests: people sign in and act through the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from connectx.models.account import User
from tests.support.factories import make_user, signed_in

_n = 0


@dataclass
class Caller:
    """A signed-in person: their own cookie jar (client) and CSRF token."""

    client: httpx.AsyncClient
    csrf: str
    user: User
    email: str

    @property
    def h(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.get(url, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.post(url, headers={**self.h, **kw.pop("headers", {})}, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.patch(url, headers={**self.h, **kw.pop("headers", {})}, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(url, headers={**self.h, **kw.pop("headers", {})}, **kw)


def new_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def person(
    app: Any, email: str | None = None, name: str = "Ada Lovelace", verified: bool = True
) -> Caller:
    """A new account holder signed in on a client of their own."""
    global _n
    _n += 1
    email = email or f"person{_n}@example.com"
    user = await make_user(email=email, name=name, verified=verified)
    client = new_client(app)
    csrf = await signed_in(client, email)
    return Caller(client, csrf, user, email)


async def owner_of(app: Any, business: str = "Acme Trading", **kw: Any) -> tuple[Caller, int]:
    """A person who created a workspace (their session is in it)."""
    caller = await person(app, **kw)
    r = await caller.post("/api/v1/workspaces", json={"name": business})
    assert r.status_code == 201, r.text
    return caller, int(r.json()["id"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def api_key(owner: Caller, scopes: list[str], name: str = "integration") -> dict[str, Any]:
    r = await owner.post("/api/v1/workspace/api-keys", json={"name": name, "scopes": scopes})
    assert r.status_code == 201, r.text
    return dict(r.json())
