"""Workspaces: create (the creator is owner), profile, several per person and switching,
audit events, and `GET /api/v1/me` with a session and with an API key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from tests.workspaces.helpers import api_key, bearer, new_client, owner_of, person


async def audit_actions(workspace_id: int | None = None) -> list[str]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        if workspace_id is not None:
            stmt = stmt.where(AuditEvent.workspace_id == workspace_id)
        return [e.action for e in (await db.execute(stmt)).scalars()]


async def test_creator_becomes_owner_and_me_reports_it(app: Any) -> None:
    ada = await person(app, name="Ada Lovelace")
    r = await ada.get("/api/v1/me")
    assert r.status_code == 200
    assert r.json()["workspace"] is None and r.json()["role"] is None

    r = await ada.post(
        "/api/v1/workspaces",
        json={"name": "  Acme   Trading ", "address": "1 Quay St", "phone": "+44 20 7946 0958"},
    )
    assert r.status_code == 201, r.text
    ws = r.json()
    assert ws["name"] == "Acme Trading"
    assert ws["phone"] == "+442079460958"  # stored E.164

    me = (await ada.get("/api/v1/me")).json()
    assert me["kind"] == "user"
    assert me["user"] == {"id": ada.user.id, "name": "Ada Lovelace"}
    assert me["workspace"] == {"id": ws["id"], "name": "Acme Trading"}
    assert me["role"] == "owner"
    assert me["api_key"] is None

    assert await audit_actions(ws["id"]) == ["workspace.created", "member.added"]


async def test_bad_input_is_a_422_with_a_message_not_a_500(app: Any) -> None:
    ada = await person(app)
    for body, field in (
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Acme", "phone": "12"}, "phone"),
        ({"name": "Acme", "address": "a\x00b"}, "address"),
    ):
        r = await ada.post("/api/v1/workspaces", json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field
        assert r.json()["detail"]
    r = await ada.post(
        "/api/v1/workspaces",
        content=b"{not json",
        headers={"content-type": "application/json", **ada.h},
    )
    assert r.status_code == 422
    assert (await ada.get("/api/v1/workspaces")).json() == []


async def test_profile_update_by_owner_only_and_audited(app: Any) -> None:
    owner, ws_id = await owner_of(app)
    r = await owner.patch(
        "/api/v1/workspace", json={"address": "2 Dock Rd", "phone": "+971501234567"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["address"] == "2 Dock Rd" and r.json()["phone"] == "+971501234567"
    assert r.json()["name"] == "Acme Trading"  # untouched

    # A bad field changes nothing, not even the good ones sent with it.
    r = await owner.patch("/api/v1/workspace", json={"name": "New Name", "phone": "nope"})
    assert r.status_code == 422
    assert (await owner.get("/api/v1/workspace")).json()["name"] == "Acme Trading"

    r = await owner.patch("/api/v1/workspace", json={"phone": None})
    assert r.status_code == 200 and r.json()["phone"] is None
    actions = await audit_actions(ws_id)
    assert actions.count("workspace.updated") == 2

    key = await api_key(owner, ["read"])
    r = await owner.client.patch(
        "/api/v1/workspace", json={"name": "Hacked"}, headers=bearer(key["key"])
    )
    assert r.status_code == 403
    assert "admin" in r.json()["detail"]


async def test_a_person_belongs_to_several_workspaces_and_switches(app: Any) -> None:
    ada, first = await owner_of(app, "First Co")
    r = await ada.post("/api/v1/workspaces", json={"name": "Second Co"})
    second = r.json()["id"]
    assert (await ada.get("/api/v1/me")).json()["workspace"]["id"] == second

    listed = (await ada.get("/api/v1/workspaces")).json()
    assert {(w["name"], w["role"], w["current"]) for w in listed} == {
        ("First Co", "owner", False),
        ("Second Co", "owner", True),
    }

    r = await ada.post(f"/api/v1/workspaces/{first}/switch")
    assert r.status_code == 200
    assert (await ada.get("/api/v1/workspace")).json()["name"] == "First Co"
    assert "session.workspace_switched" in await audit_actions(first)

    # Someone else's workspace is not among yours: 404, nothing changes.
    _bob, bobs = await owner_of(app, "Bob's Shop")
    r = await ada.post(f"/api/v1/workspaces/{bobs}/switch")
    assert r.status_code == 404
    assert (await ada.get("/api/v1/workspace")).json()["id"] == first


async def test_me_with_an_api_key(app: Any) -> None:
    owner, ws_id = await owner_of(app)
    key = await api_key(owner, ["read", "write"], name="CRM sync")
    async with new_client(app) as anonymous:
        r = await anonymous.get("/api/v1/me", headers=bearer(key["key"]))
        assert r.status_code == 200, r.text
        me = r.json()
        assert me["kind"] == "api_key"
        assert me["api_key"] == {"id": key["id"], "name": "CRM sync", "scopes": ["read", "write"]}
        assert me["workspace"] == {"id": ws_id, "name": "Acme Trading"}
        assert me["user"] is None and me["scopes"] == ["read", "write"]

        assert (await anonymous.get("/api/v1/me")).status_code == 401
        r = await anonymous.get("/api/v1/me", headers=bearer("cx_not-a-real-key"))
        assert r.status_code == 401
        # A key cannot create workspaces (it belongs to one).
        r = await anonymous.post(
            "/api/v1/workspaces", json={"name": "X"}, headers=bearer(key["key"])
        )
        assert r.status_code == 403
