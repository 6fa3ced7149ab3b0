"""Labels, internal notes, canned responses, read markers and notifications over HTTP."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from connectx.db.session import unit_of_work
from connectx.inbox import repository as inbox_repo
from connectx.models.audit import AuditEvent
from connectx.models.inbox import Note, ReadMarker
from connectx.models.outbox import OutboxMessage
from tests.inbox.support import customer_message, customers_write, workspace_with_number
from tests.support.mail import outbox
from tests.whatsapp.support import delivered, drain
from tests.workspaces.helpers import join, owner_of


async def test_labels_on_conversations(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    await workspace_with_number(owner)
    a, b = await customers_write(owner, ("Ann One", "16505550001"), ("Ben Two", "16505550002"))
    r = await owner.post("/api/v1/labels", json={"name": " VIP  customer ", "color": "#1E88E5"})
    assert r.status_code == 201, r.text
    vip = r.json()
    assert (vip["name"], vip["color"]) == ("VIP customer", "#1e88e5")
    assert (await owner.post("/api/v1/labels", json={"name": "vip CUSTOMER"})).status_code == 409
    assert (
        await owner.post("/api/v1/labels", json={"name": "x", "color": "red"})
    ).status_code == 422
    assert (await agent.post("/api/v1/labels", json={"name": "Agents' own"})).status_code == 403

    r = await agent.post(f"/api/v1/conversations/{a}/labels", json={"label_id": vip["id"]})
    assert r.status_code == 200 and r.json()["labels"] == [vip["id"]]
    r = await agent.post(f"/api/v1/conversations/{a}/labels", json={"label_id": vip["id"]})
    assert r.json()["labels"] == [vip["id"]]  # twice: unchanged
    listed = (await agent.get("/api/v1/inbox/conversations", params={"label": vip["id"]})).json()
    assert [c["id"] for c in listed["items"]] == [a]
    r = await agent.delete(f"/api/v1/conversations/{a}/labels/{vip['id']}")
    assert r.json()["labels"] == []
    assert (await agent.get("/api/v1/inbox/conversations", params={"label": vip["id"]})).json()[
        "items"
    ] == []
    r = await owner.client.patch(
        f"/api/v1/labels/{vip['id']}", json={"name": "Gold"}, headers=owner.h
    )
    assert r.json()["name"] == "Gold"
    assert (await owner.delete(f"/api/v1/labels/{vip['id']}")).status_code == 204
    assert (await owner.get("/api/v1/labels")).json() == []
    assert b  # the other conversation was never touched


async def test_internal_notes_are_sealed_masked_and_never_sent(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner, _ = await owner_of(app)
    analyst = await join(app, owner, "analyst")
    await workspace_with_number(owner)
    (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
    text = "Customer read their card 4111 1111 1111 1111 on the phone; call back Tuesday."
    r = await owner.post(f"/api/v1/conversations/{cid}/notes", json={"body": text})
    assert r.status_code == 201, r.text
    assert r.json()["body"] == (
        "Customer read their card **** **** **** 1111 on the phone; call back Tuesday."
    )
    assert r.json()["author_user_id"] == owner.user.id
    notes = (await owner.get(f"/api/v1/conversations/{cid}/notes")).json()
    assert [n["body"] for n in notes] == [r.json()["body"]]
    assert (
        await owner.post(f"/api/v1/conversations/{cid}/notes", json={"body": "  "})
    ).status_code == 422
    assert (await analyst.get(f"/api/v1/conversations/{cid}/notes")).status_code == 403
    async with unit_of_work() as db:
        stored = (await db.execute(select(Note.body_enc))).scalars().all()
        sent = (await db.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
    assert len(stored) == 1 and b"call back" not in stored[0] and b"1111" not in stored[0]
    assert sent == 0
    # read back from storage (the list opens the sealed row): the card never reached it, nor
    # any log record or audit entry
    assert "4111" not in json.dumps(notes)
    async with unit_of_work() as db:
        events = (await db.execute(select(AuditEvent.data, AuditEvent.reason))).all()
    assert "4111" not in json.dumps([list(e) for e in events], default=str)
    assert not [r for r in caplog.records if "4111" in r.getMessage()]


async def test_canned_responses_by_shortcut(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    body = {"shortcut": "/Greet", "title": "Greeting", "body": "Hello! How can we help?"}
    r = await owner.post("/api/v1/canned-responses", json=body)
    assert r.status_code == 201, r.text
    greet = r.json()
    assert greet["shortcut"] == "greet"
    assert (await owner.post("/api/v1/canned-responses", json=body)).status_code == 409
    bad = {**body, "shortcut": "two words"}
    r = await owner.post("/api/v1/canned-responses", json=bad)
    assert r.status_code == 422 and r.json()["field"] == "shortcut"
    card = {**body, "shortcut": "pay", "body": "Pay with 4111111111111111"}
    assert (await owner.post("/api/v1/canned-responses", json=card)).status_code == 422
    await owner.post(
        "/api/v1/canned-responses", json={"shortcut": "goodbye", "title": "Bye", "body": "Bye!"}
    )
    assert (
        await agent.post("/api/v1/canned-responses", json={**body, "shortcut": "x"})
    ).status_code == 403
    found = (await agent.get("/api/v1/canned-responses", params={"prefix": "/gr"})).json()
    assert [c["shortcut"] for c in found] == ["greet"]
    found = (await agent.get("/api/v1/canned-responses", params={"prefix": "g"})).json()
    assert [c["shortcut"] for c in found] == ["goodbye", "greet"]
    r = await owner.client.patch(
        f"/api/v1/canned-responses/{greet['id']}", json={"body": "Hi there!"}, headers=owner.h
    )
    assert r.json()["body"] == "Hi there!"
    assert (await owner.delete(f"/api/v1/canned-responses/{greet['id']}")).status_code == 204
    assert (await agent.get(f"/api/v1/canned-responses/{greet['id']}")).status_code == 404


async def test_unread_per_member(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    await workspace_with_number(owner)
    (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
    counts = (await owner.get("/api/v1/inbox/counts")).json()
    assert counts == {"mine": 0, "unassigned": 1, "all": 1, "notifications": 0}
    assert (await owner.post(f"/api/v1/conversations/{cid}/read")).status_code == 204
    assert (await owner.get("/api/v1/inbox/counts")).json()["all"] == 0
    assert (await agent.get("/api/v1/inbox/counts")).json()["all"] == 1  # per member
    row = (await owner.get(f"/api/v1/inbox/conversations/{cid}")).json()
    assert row["unread"] is False
    await delivered(owner.client, customer_message("Sheena Nelson", "16505551234", "Hello?"))
    await drain()
    assert (await owner.get(f"/api/v1/inbox/conversations/{cid}")).json()["unread"] is True
    only_unread = (await owner.get("/api/v1/inbox/conversations", params={"unread": True})).json()
    assert [c["id"] for c in only_unread["items"]] == [cid]
    # Reading again moves the marker forward; a marker is never moved back (one upsert).
    assert (await owner.post(f"/api/v1/conversations/{cid}/read")).status_code == 204
    assert (await owner.get(f"/api/v1/inbox/conversations/{cid}")).json()["unread"] is False
    async with unit_of_work() as db:
        marker = (
            await db.execute(select(ReadMarker).where(ReadMarker.conversation_id == cid))
        ).scalar_one()
        upto, ws, user = marker.read_upto, marker.workspace_id, marker.user_id
        values = {"workspace_id": ws, "conversation_id": cid, "user_id": user}
        await inbox_repo.upsert_read_marker(
            db, {**values, "read_upto": upto - timedelta(hours=1), "updated_at": upto}
        )
    async with unit_of_work() as db:
        found = await db.execute(
            select(ReadMarker.read_upto).where(ReadMarker.conversation_id == cid)
        )
        assert found.scalar_one() == upto


async def test_assignment_mail_when_asked_and_without_message_text(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    await workspace_with_number(owner)
    (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
    url = f"/api/v1/conversations/{cid}/assignment"
    await owner.client.put(url, json={"user_id": agent.user.id}, headers=owner.h)
    assert await outbox(to=agent.email, kind="inbox_assignment") == []  # not asked for
    r = await agent.client.put(
        "/api/v1/inbox/preferences", json={"email_on_assignment": True}, headers=agent.h
    )
    assert r.json() == {"email_on_assignment": True}
    await owner.client.put(url, json={"user_id": None}, headers=owner.h)
    await owner.client.put(url, json={"user_id": agent.user.id}, headers=owner.h)
    (mail,) = await outbox(to=agent.email, kind="inbox_assignment")
    assert f"#{cid}" in mail.subject and f"/inbox/c/{cid}" in mail.body
    for private in ("Sheena", "Nelson", "16505551234", "Hello there"):
        assert private not in mail.body and private not in mail.subject
    bell = (await agent.get("/api/v1/notifications")).json()
    assert bell["unread"] == 2
    first = bell["items"][0]["id"]
    r = await agent.post(f"/api/v1/notifications/{first}/read")
    assert r.json()["read_at"] is not None
    assert (await agent.get("/api/v1/notifications", params={"unread": True})).json()["unread"] == 1
    assert (await owner.post(f"/api/v1/notifications/{first}/read")).status_code == 404
    assert (await agent.post("/api/v1/notifications/read-all")).status_code == 204
    assert (await agent.get("/api/v1/inbox/counts")).json()["notifications"] == 0
