"""Members and roles: list, change role (owners/admins; only owners touch the owner role; the
last owner stays), remove (their sessions in the workspace and their API keys stop working)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from tests.workspaces.helpers import api_key, bearer, join, member_id, new_client, owner_of


async def events(action: str) -> list[AuditEvent]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list((await db.execute(stmt)).scalars())


async def test_members_are_listed_with_names_emails_and_roles(app: Any) -> None:
    owner, ws_id = await owner_of(app, name="Ada Lovelace")
    agent = await join(app, owner, "agent", name="Grace Hopper")
    analyst = await join(app, owner, "analyst", name="Alan Turing")

    for viewer in (owner, agent, analyst):  # every member may see the team
        r = await viewer.get("/api/v1/workspace/members")
        assert r.status_code == 200, r.text
        assert sorted((m["name"], m["email"], m["role"]) for m in r.json()) == sorted(
            [
                ("Ada Lovelace", owner.email, "owner"),
                ("Grace Hopper", agent.email, "agent"),
                ("Alan Turing", analyst.email, "analyst"),
            ]
        )
    viewed = await events("members.viewed")
    assert viewed and all(e.workspace_id == ws_id for e in viewed)
    # Audit events carry ids, never the names or addresses shown.
    async with unit_of_work() as db:
        everything = list((await db.execute(select(AuditEvent))).scalars())
    blob = repr([(e.actor, e.subject, e.data, e.reason) for e in everything])
    for secret in ("Ada", "Grace", "Alan", owner.email, agent.email):
        assert secret not in blob


async def test_owner_changes_roles_and_it_is_audited(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    mid = await member_id(owner, agent.user.id)

    r = await owner.patch(f"/api/v1/workspace/members/{mid}", json={"role": "admin"})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "admin"
    assert (await agent.get("/api/v1/me")).json()["role"] == "admin"  # next request
    changed = await events("member.role_changed")
    assert changed[-1].subject == f"user:{agent.user.id}"
    assert changed[-1].data == {"member_id": mid, "from": "agent", "to": "admin"}

    r = await owner.patch(f"/api/v1/workspace/members/{mid}", json={"role": "boss"})
    assert r.status_code == 422 and "owner, admin, agent, analyst" in r.json()["detail"]


async def test_only_owners_and_admins_manage_and_only_owners_touch_owners(app: Any) -> None:
    owner, _ = await owner_of(app)
    admin = await join(app, owner, "admin")
    agent = await join(app, owner, "agent")
    owner_mid = await member_id(owner, owner.user.id)
    agent_mid = await member_id(owner, agent.user.id)

    r = await agent.patch(f"/api/v1/workspace/members/{owner_mid}", json={"role": "agent"})
    assert r.status_code == 403
    r = await agent.delete(f"/api/v1/workspace/members/{owner_mid}")
    assert r.status_code == 403

    # An admin manages agents, but neither makes owners nor demotes or removes them.
    r = await admin.patch(f"/api/v1/workspace/members/{agent_mid}", json={"role": "analyst"})
    assert r.status_code == 200
    r = await admin.patch(f"/api/v1/workspace/members/{agent_mid}", json={"role": "owner"})
    assert r.status_code == 403 and "owner" in r.json()["detail"]
    r = await admin.patch(f"/api/v1/workspace/members/{owner_mid}", json={"role": "agent"})
    assert r.status_code == 403
    r = await admin.delete(f"/api/v1/workspace/members/{owner_mid}")
    assert r.status_code == 403


async def test_the_last_owner_can_be_neither_demoted_nor_removed(app: Any) -> None:
    owner, _ = await owner_of(app)
    owner_mid = await member_id(owner, owner.user.id)

    r = await owner.patch(f"/api/v1/workspace/members/{owner_mid}", json={"role": "admin"})
    assert r.status_code == 409
    assert "last owner" in r.json()["detail"]
    r = await owner.delete(f"/api/v1/workspace/members/{owner_mid}")
    assert r.status_code == 409

    second = await join(app, owner, "owner")
    r = await owner.patch(f"/api/v1/workspace/members/{owner_mid}", json={"role": "admin"})
    assert r.status_code == 200
    second_mid = await member_id(second, second.user.id)
    r = await second.delete(f"/api/v1/workspace/members/{second_mid}")
    assert r.status_code == 409  # now the second is the last owner


async def test_removing_a_member_revokes_their_sessions_and_keys_at_once(app: Any) -> None:
    owner, ws_id = await owner_of(app)
    admin = await join(app, owner, "admin")
    admins_key = await api_key(admin, ["read"], name="admin's")
    owners_key = await api_key(owner, ["read"], name="owner's")
    mid = await member_id(owner, admin.user.id)

    async with new_client(app) as c:
        assert (await c.get("/api/v1/me", headers=bearer(admins_key["key"]))).status_code == 200

        r = await owner.delete(f"/api/v1/workspace/members/{mid}")
        assert r.status_code == 204

        # Their very next requests fail: the session is revoked, the key too.
        assert (await admin.get("/api/v1/me")).status_code == 401
        assert (await c.get("/api/v1/me", headers=bearer(admins_key["key"]))).status_code == 401
        # Keys made by others keep working.
        assert (await c.get("/api/v1/me", headers=bearer(owners_key["key"]))).status_code == 200

    r = await owner.get("/api/v1/workspace/members")
    assert admin.user.id not in [m["user_id"] for m in r.json()]
    removed = (await events("member.removed"))[-1]
    assert removed.workspace_id == ws_id and removed.subject == f"user:{admin.user.id}"
    assert removed.data["api_keys_revoked"] == [admins_key["id"]]
    assert removed.data["sessions_revoked"] == 1
    r = await owner.delete(f"/api/v1/workspace/members/{mid}")
    assert r.status_code == 404
