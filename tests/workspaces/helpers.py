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


async def invitation_token(email: str) -> str:
    """The token of the newest invitation mailed to ``email`` (read from the outbox)."""
    from urllib.parse import parse_qs, urlsplit

    from tests.support.mail import first_link, outbox

    mails = await outbox(to=email, kind="invitation")
    assert mails, f"no invitation mailed to {email}"
    link = first_link(mails[0].body)
    assert link.startswith("http://testserver/invitations/accept?token="), link
    return parse_qs(urlsplit(link).query)["token"][0]


async def join(app: Any, owner: Caller, role: str, name: str = "Grace Hopper") -> Caller:
    """A new person invited by ``owner`` with ``role``, who signs in and accepts."""
    newcomer = await person(app, name=name)
    r = await owner.post(
        "/api/v1/workspace/invitations", json={"email": newcomer.email, "role": role}
    )
    assert r.status_code == 201, r.text
    token = await invitation_token(newcomer.email)
    r = await newcomer.post("/api/v1/invitations/accept", json={"token": token})
    assert r.status_code == 200, r.text
    return newcomer


async def member_id(owner: Caller, user_id: int) -> int:
    r = await owner.get("/api/v1/workspace/members")
    assert r.status_code == 200, r.text
    return next(int(m["id"]) for m in r.json() if m["user_id"] == user_id)
