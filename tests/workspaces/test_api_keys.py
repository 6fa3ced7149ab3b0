"""API keys: created by owners/admins, shown exactly once, stored hashed, scoped, revocable,
last-used time recorded and shown."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.api_key import ApiKey
from connectx.models.audit import AuditEvent
from tests.workspaces.helpers import api_key, bearer, join, new_client, owner_of


async def test_key_is_shown_once_and_stored_only_as_a_hash(app: Any) -> None:
    owner, ws_id = await owner_of(app)
    created = await api_key(owner, ["read", "write"], name="CRM sync")
    secret = created["key"]
    assert secret.startswith("cx_") and len(secret) >= 40
    assert created["prefix"] == secret[:12]
    assert created["scopes"] == ["read", "write"]

    listed = (await owner.get("/api/v1/workspace/api-keys")).json()
    one = (await owner.get(f"/api/v1/workspace/api-keys/{created['id']}")).json()
    for shown in (listed[0], one):
        assert "key" not in shown and secret not in repr(shown)

    async with unit_of_work() as db:
        row = (await db.execute(select(ApiKey))).scalar_one()
        assert row.key_hash == hashlib.sha256(secret.encode()).digest()
        stored = repr({c.name: getattr(row, c.name) for c in ApiKey.__table__.columns})
        assert secret not in stored and secret[12:] not in stored
        event = (
            await db.execute(select(AuditEvent).where(AuditEvent.action == "api_key.created"))
        ).scalar_one()
        assert event.subject == f"api_key:{row.id}" and event.workspace_id == ws_id
        assert secret not in repr(event.data)


async def test_last_used_time_is_recorded_and_listed(app: Any) -> None:
    owner, _ = await owner_of(app)
    created = await api_key(owner, ["read"])
    assert (await owner.get("/api/v1/workspace/api-keys")).json()[0]["last_used_at"] is None
    async with new_client(app) as c:
        assert (await c.get("/api/v1/workspace", headers=bearer(created["key"]))).status_code == 200
    first = (await owner.get("/api/v1/workspace/api-keys")).json()[0]["last_used_at"]
    assert first is not None
    clock.advance(timedelta(minutes=5))
    async with new_client(app) as c:
        await c.get("/api/v1/workspace", headers=bearer(created["key"]))
    again = (await owner.get("/api/v1/workspace/api-keys")).json()[0]["last_used_at"]
    assert again > first


async def test_scopes_are_enforced(app: Any) -> None:
    owner, _ = await owner_of(app)
    read = (await api_key(owner, ["read"]))["key"]
    write = (await api_key(owner, ["write"]))["key"]
    admin = (await api_key(owner, ["admin"]))["key"]
    async with new_client(app) as c:
        for key in (read, write, admin):  # write and admin imply read
            assert (await c.get("/api/v1/workspace", headers=bearer(key))).status_code == 200
            assert (
                await c.get("/api/v1/workspace/members", headers=bearer(key))
            ).status_code == 200
        for key in (read, write):
            r = await c.patch("/api/v1/workspace", json={"name": "X"}, headers=bearer(key))
            assert r.status_code == 403 and "'admin' scope" in r.json()["detail"]
            r = await c.get("/api/v1/workspace/api-keys", headers=bearer(key))
            assert r.status_code == 403
            r = await c.post(
                "/api/v1/workspace/api-keys",
                json={"name": "n", "scopes": ["admin"]},
                headers=bearer(key),
            )
            assert r.status_code == 403
        # An admin key manages the workspace, without any CSRF token (no cookie involved).
        r = await c.patch("/api/v1/workspace", json={"name": "Renamed"}, headers=bearer(admin))
        assert r.status_code == 200 and r.json()["name"] == "Renamed"
        r = await c.post(
            "/api/v1/workspace/api-keys",
            json={"name": "child", "scopes": ["read"]},
            headers=bearer(admin),
        )
        assert r.status_code == 201
        # Keys belong to a workspace, not a person: no switching, no account routes.
        assert (await c.get("/api/v1/workspaces", headers=bearer(admin))).status_code == 403


async def test_revoked_key_stops_working_on_the_next_request(app: Any) -> None:
    owner, _ = await owner_of(app)
    created = await api_key(owner, ["read"])
    async with new_client(app) as c:
        assert (await c.get("/api/v1/me", headers=bearer(created["key"]))).status_code == 200
        r = await owner.delete(f"/api/v1/workspace/api-keys/{created['id']}")
        assert r.status_code == 204
        r = await c.get("/api/v1/me", headers=bearer(created["key"]))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    listed = (await owner.get("/api/v1/workspace/api-keys")).json()
    assert listed[0]["revoked_at"] is not None
    assert (await owner.delete(f"/api/v1/workspace/api-keys/{created['id']}")).status_code == 409


async def test_who_may_create_keys_and_what_is_valid(app: Any) -> None:
    owner, _ = await owner_of(app)
    admin = await join(app, owner, "admin")
    agent = await join(app, owner, "agent")
    r = await admin.post("/api/v1/workspace/api-keys", json={"name": "ok", "scopes": ["read"]})
    assert r.status_code == 201
    assert r.json()["created_by"] == admin.user.id
    r = await agent.post("/api/v1/workspace/api-keys", json={"name": "no", "scopes": ["read"]})
    assert r.status_code == 403
    for body, field in (
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["root"]}, "scopes"),
    ):
        r = await owner.post("/api/v1/workspace/api-keys", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, r.text


async def test_cookie_state_changes_need_the_csrf_token(app: Any) -> None:
    owner, _ = await owner_of(app)
    r = await owner.client.post(
        "/api/v1/workspace/api-keys", json={"name": "x", "scopes": ["read"]}
    )
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = await owner.client.patch("/api/v1/workspace", json={"name": "Nope"})
    assert r.status_code == 403
    assert (await owner.get("/api/v1/workspace")).json()["name"] == "Acme Trading"
