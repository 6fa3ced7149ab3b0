"""Invitations by e-mail: create (mailed link), list, revoke, expire after 7 days, accept by the
signed-in person whose verified address matches; the address is stored encrypted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.mail import MailMessage
from connectx.models.workspace import Invitation
from connectx.privacy.vault import Vault
from tests.support.mail import outbox
from tests.workspaces.helpers import (
    api_key,
    bearer,
    invitation_token,
    join,
    new_client,
    owner_of,
    person,
)


async def test_invitation_is_mailed_encrypted_listed_and_accepted(app: Any) -> None:
    owner, ws_id = await owner_of(app, "Acme Trading")
    grace = await person(app, email="grace@example.com", name="Grace Hopper")

    r = await owner.post(
        "/api/v1/workspace/invitations", json={"email": " Grace@Example.com ", "role": "agent"}
    )
    assert r.status_code == 201, r.text
    inv = r.json()
    assert inv["email"] == "grace@example.com" and inv["status"] == "pending"
    assert inv["role"] == "agent"

    mails = await outbox(to="grace@example.com", kind="invitation")
    assert len(mails) == 1
    assert "Acme Trading" in mails[0].subject and "as agent" in mails[0].body
    token = await invitation_token("grace@example.com")

    async with unit_of_work() as db:
        row = (await db.execute(select(Invitation))).scalar_one()
        mail_row = (await db.execute(select(MailMessage))).scalars().all()
        # Stored encrypted under the invitation's own subject, found by the blind index.
        assert b"grace@example.com" not in row.email_enc
        assert row.email_index == await Vault(db).blind_index("email", "grace@example.com")
        assert token.encode() not in row.token_hash
        assert {m.subject for m in mail_row if m.kind == "invitation"} == {f"invitation:{row.id}"}

    listed = (await owner.get("/api/v1/workspace/invitations")).json()
    assert [(i["id"], i["email"], i["role"]) for i in listed] == [
        (inv["id"], "grace@example.com", "agent")
    ]

    r = await grace.post("/api/v1/invitations/accept", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": ws_id, "name": "Acme Trading", "role": "agent", "current": True}
    me = (await grace.get("/api/v1/me")).json()
    assert me["workspace"]["id"] == ws_id and me["role"] == "agent"
    assert (await owner.get("/api/v1/workspace/invitations")).json() == []

    # A link works once.
    r = await grace.post("/api/v1/invitations/accept", json={"token": token})
    assert r.status_code == 410


async def test_only_the_verified_invited_address_can_accept(app: Any) -> None:
    owner, _ = await owner_of(app)
    await owner.post("/api/v1/workspace/invitations", json={"email": "carol@example.com"})
    token = await invitation_token("carol@example.com")

    mallory = await person(app, email="mallory@example.com")
    r = await mallory.post("/api/v1/invitations/accept", json={"token": token})
    assert r.status_code == 403 and "another e-mail address" in r.json()["detail"]

    # (An unverified account cannot sign in at all, so it never reaches this step.)
    carol = await person(app, email="carol@example.com")
    r = await carol.post("/api/v1/invitations/accept", json={"token": "made-up"})
    assert r.status_code == 404
    async with new_client(app) as anonymous:
        r = await anonymous.post("/api/v1/invitations/accept", json={"token": token})
        assert r.status_code == 401


async def test_a_revoked_invitation_stops_working(app: Any) -> None:
    owner, _ = await owner_of(app)
    dan = await person(app, email="dan@example.com")
    inv = (
        await owner.post("/api/v1/workspace/invitations", json={"email": "dan@example.com"})
    ).json()
    dan_token = await invitation_token("dan@example.com")

    assert (await owner.delete(f"/api/v1/workspace/invitations/{inv['id']}")).status_code == 204
    r = await dan.post("/api/v1/invitations/accept", json={"token": dan_token})
    assert r.status_code == 410 and "withdrawn" in r.json()["detail"]
    assert (await owner.delete(f"/api/v1/workspace/invitations/{inv['id']}")).status_code == 409
    assert (await owner.get("/api/v1/workspace/invitations")).json() == []
    assert (await dan.get("/api/v1/me")).json()["workspace"] is None


async def test_expiry_is_seven_days(app: Any) -> None:
    owner, _ = await owner_of(app)
    await owner.post("/api/v1/workspace/invitations", json={"email": "fay@example.com"})
    token = await invitation_token("fay@example.com")
    clock.advance(timedelta(days=6, hours=23))
    fay = await person(app, email="fay@example.com")
    r = await fay.get(f"/invitations/accept?token={token}")
    assert r.status_code == 200 and "Accept and join" in r.text  # still valid a minute before
    clock.advance(timedelta(hours=1, seconds=1))
    r = await fay.post("/api/v1/invitations/accept", json={"token": token})
    assert r.status_code == 410 and "expired" in r.json()["detail"]
    assert (await fay.get("/api/v1/me")).json()["workspace"] is None


async def test_inviting_again_replaces_the_earlier_link(app: Any) -> None:
    owner, _ = await owner_of(app)
    gus = await person(app, email="gus@example.com")
    await owner.post("/api/v1/workspace/invitations", json={"email": "gus@example.com"})
    first = await invitation_token("gus@example.com")
    await owner.post(
        "/api/v1/workspace/invitations", json={"email": "gus@example.com", "role": "analyst"}
    )
    second = await invitation_token("gus@example.com")
    assert first != second
    assert len((await owner.get("/api/v1/workspace/invitations")).json()) == 1
    assert (await gus.post("/api/v1/invitations/accept", json={"token": first})).status_code == 410
    r = await gus.post("/api/v1/invitations/accept", json={"token": second})
    assert r.status_code == 200 and r.json()["role"] == "analyst"


async def test_invitation_rules(app: Any) -> None:
    owner, _ = await owner_of(app)
    admin = await join(app, owner, "admin")
    agent = await join(app, owner, "agent")

    r = await owner.post("/api/v1/workspace/invitations", json={"email": "not an address"})
    assert r.status_code == 422 and r.json()["field"] == "email"
    r = await owner.post(
        "/api/v1/workspace/invitations", json={"email": "x@example.com", "role": "king"}
    )
    assert r.status_code == 422
    r = await owner.post("/api/v1/workspace/invitations", json={"email": agent.email})
    assert r.status_code == 409  # already a member
    r = await agent.post("/api/v1/workspace/invitations", json={"email": "y@example.com"})
    assert r.status_code == 403
    r = await admin.post(
        "/api/v1/workspace/invitations", json={"email": "z@example.com", "role": "owner"}
    )
    assert r.status_code == 403
    r = await admin.post(
        "/api/v1/workspace/invitations", json={"email": "z@example.com", "role": "admin"}
    )
    assert r.status_code == 201

    # An API key with the admin scope may invite; a read key may not.
    admin_key = await api_key(owner, ["admin"])
    read_key = await api_key(owner, ["read"])
    async with new_client(app) as c:
        r = await c.post(
            "/api/v1/workspace/invitations",
            json={"email": "k@example.com"},
            headers=bearer(admin_key["key"]),
        )
        assert r.status_code == 201, r.text
        r = await c.post(
            "/api/v1/workspace/invitations",
            json={"email": "k2@example.com"},
            headers=bearer(read_key["key"]),
        )
        assert r.status_code == 403


async def test_invitation_is_delivered_over_smtp(app: Any, smtp_server: Any) -> None:
    owner, _ = await owner_of(app, "Acme Trading")
    r = await owner.post("/api/v1/workspace/invitations", json={"email": "hal@example.com"})
    assert r.status_code == 201
    message = await smtp_server.wait_for(to="hal@example.com")
    assert "Acme Trading" in message["Subject"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "http://testserver/invitations/accept?token=" in body


async def test_who_signs_up_after_being_invited_can_join_without_the_link(app: Any) -> None:
    owner, ws_id = await owner_of(app, "Acme Trading")
    r = await owner.post(
        "/api/v1/workspace/invitations", json={"email": "jo@example.com", "role": "analyst"}
    )
    inv_id = r.json()["id"]

    jo = await person(app, email="jo@example.com")  # signed up (and verified) afterwards
    mine = (await jo.get("/api/v1/invitations")).json()
    assert [(i["id"], i["workspace_name"], i["role"]) for i in mine] == [
        (inv_id, "Acme Trading", "analyst")
    ]
    # Someone else cannot use it, and cannot even tell it exists.
    other = await person(app, email="kim@example.com")
    assert (await other.get("/api/v1/invitations")).json() == []
    r = await other.post(f"/api/v1/invitations/{inv_id}/accept")
    assert r.status_code == 404

    r = await jo.post(f"/api/v1/invitations/{inv_id}/accept")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": ws_id, "name": "Acme Trading", "role": "analyst", "current": True}
    assert (await jo.get("/api/v1/invitations")).json() == []
    assert (await jo.post(f"/api/v1/invitations/{inv_id}/accept")).status_code == 404
