"""The contact side panel: attributes (sealed, audited), history, consent, the requests hook."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from connectx.models.contact import Contact
from tests.inbox.support import customers_write, workspace_with_number
from tests.realtime.sse import Stream, cookie_headers
from tests.workspaces.helpers import join, owner_of


async def test_panel_shows_history_consent_and_edits_attributes(app: Any) -> None:
    owner, _ = await owner_of(app)
    analyst = await join(app, owner, "analyst")
    await workspace_with_number(owner)
    (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
    conversation = (await owner.get(f"/api/v1/inbox/conversations/{cid}")).json()
    contact_id = conversation["contact"]["id"]
    url = f"/api/v1/contacts/{contact_id}/panel"

    panel = (await owner.get(url)).json()
    assert (panel["name"], panel["phone"]) == ("Sheena Nelson", "+16505551234")
    assert [c["id"] for c in panel["conversations"]] == [cid]
    assert panel["attributes"] == {}
    assert panel["requests"] == []  # data requests exist (connectx.inbox.ui.triage registers them)
    assert {(c["purpose"], c["granted"]) for c in panel["consent"]} >= {("marketing", False)}
    assert (await analyst.get(url)).status_code == 403

    edit = f"/api/v1/contacts/{contact_id}/attributes"
    async with Stream(app, "/api/v1/events", cookie_headers(owner.client)) as events:
        await events.next()
        r = await owner.client.patch(
            edit,
            json={"attributes": {"company": "Nelson & Co", "card": "4111 1111 1111 1111"}},
            headers=owner.h,
        )
        assert r.status_code == 200, r.text
        seen = await events.next()
        assert (seen.event, seen.data["contact_id"]) == ("contact.updated", contact_id)
    assert r.json()["attributes"] == {"card": "**** **** **** 1111", "company": "Nelson & Co"}
    r = await owner.client.patch(edit, json={"attributes": {"card": None}}, headers=owner.h)
    assert r.json()["attributes"] == {"company": "Nelson & Co"}
    r = await owner.client.patch(edit, json={"attributes": {"Bad Key": "x"}}, headers=owner.h)
    assert r.status_code == 422 and "Bad Key" in r.json()["detail"]
    r = await owner.client.patch(edit, json={"attributes": {"x": "y" * 501}}, headers=owner.h)
    assert r.status_code == 422

    async with unit_of_work() as db:
        sealed = (
            await db.execute(select(Contact.attributes_enc).where(Contact.id == contact_id))
        ).scalar_one()
        changes = (
            (await db.execute(select(AuditEvent).where(AuditEvent.action == "contact.updated")))
            .scalars()
            .all()
        )
    assert sealed is not None and b"Nelson" not in sealed
    assert [e.data["fields"] for e in changes] == [["attributes"], ["attributes"]]
    assert all(e.subject == f"contact:{contact_id}" for e in changes)


async def test_the_requests_hook_fills_the_panel(app: Any) -> None:
    from connectx.inbox import contact_panel

    seen: list[tuple[int, int]] = []

    async def provider(db: Any, workspace_id: int, contact_id: int) -> list[dict[str, Any]]:
        seen.append((workspace_id, contact_id))
        return [{"id": 1, "kind": "access", "status": "open", "due": "2026-12-31"}]

    previous = contact_panel._requests_provider
    contact_panel.provide_requests(provider)
    try:
        owner, ws = await owner_of(app)
        await workspace_with_number(owner)
        (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
        contact_id = (await owner.get(f"/api/v1/inbox/conversations/{cid}")).json()["contact"]["id"]
        panel = (await owner.get(f"/api/v1/contacts/{contact_id}/panel")).json()
    finally:
        contact_panel._requests_provider = previous
    assert panel["requests"] == [{"id": 1, "kind": "access", "status": "open", "due": "2026-12-31"}]
    assert seen == [(ws, contact_id)]
