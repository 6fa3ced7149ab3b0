"""A workspace decides its customers' requests over HTTP: filing on a customer's behalf, the
clock and its one extension, refusal with reasons, approval carried out by the executor,
reminders before the due date, and a request filed by a WhatsApp keyword."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.data_request import RequestDialog
from connectx.models.outbox import OutboxMessage
from connectx.privacy.requests import tasks
from tests.privacy_requests.support import actions, all_requests, request_row, text_message
from tests.support.factories import signed_in
from tests.support.mail import outbox
from tests.whatsapp.support import count, delivered, drain, inbound_for
from tests.workspaces.helpers import Caller, owner_of


async def _file(owner: Caller, contact_id: int, **extra: Any) -> dict[str, Any]:
    body = {"contact_id": contact_id, "kind": "access", "identity_checked": True, **extra}
    r = await owner.post("/api/v1/privacy/requests", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_extension_rules_hold(app: Any) -> None:
    owner, _ = await owner_of(app)
    contact = (await inbound_for(owner))["contact_id"]
    req = await _file(owner, contact)
    assert req["status"] == "pending" and req["verification"] == "workspace_attested"
    assert req["days_left"] == 29 and not req["overdue"]
    url = f"/api/v1/privacy/requests/{req['id']}/extend"

    r = await owner.post(url, json={"days": 10, "reason": ""})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = await owner.post(url, json={"days": 31, "reason": "We need the archive from storage."})
    assert r.status_code == 422 and r.json()["field"] == "days"
    r = await owner.post(url, json={"days": 20, "reason": "We need the archive from storage."})
    assert r.status_code == 200, r.text
    extended = r.json()
    assert extended["extended"] and extended["extension_reason"].startswith("We need")
    assert extended["days_left"] == 49
    r = await owner.post(url, json={"days": 5, "reason": "A second time, please, we are slow."})
    assert r.status_code == 409 and "one extension" in r.json()["detail"]

    late = await _file(owner, contact, kind="restriction")
    clock.advance(timedelta(days=30, seconds=1))
    owner.csrf = await signed_in(owner.client, owner.email)  # the old session has expired
    r = await owner.post(
        f"/api/v1/privacy/requests/{late['id']}/extend",
        json={"days": 5, "reason": "Too late for an extension now."},
    )
    assert r.status_code == 409 and "before the request is due" in r.json()["detail"]
    overdue = (await owner.get("/api/v1/privacy/requests?status=open")).json()
    assert {r["id"]: r["overdue"] for r in overdue}[late["id"]] is True


async def test_refusal_gives_reasons_and_closes(app: Any) -> None:
    owner, _ = await owner_of(app)
    contact = (await inbound_for(owner))["contact_id"]
    req = await _file(owner, contact, kind="erasure")
    url = f"/api/v1/privacy/requests/{req['id']}/refuse"
    r = await owner.post(url, json={"reason": "no"})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = await owner.post(url, json={"reason": "An open invoice dispute: we must keep the record."})
    assert r.status_code == 200, r.text
    refused = r.json()
    assert refused["status"] == "refused" and refused["closed_at"] is not None
    assert refused["refusal_reason"].startswith("An open invoice")
    # The customer's window is closed and no e-mail is known: the timeline says so.
    assert (await actions(req["id"]))[-1] == "notice_undelivered"
    r = await owner.post(f"/api/v1/privacy/requests/{req['id']}/approve")
    assert r.status_code == 409


async def test_approval_needs_verification_and_runs_the_executor(app: Any) -> None:
    owner, _ = await owner_of(app)
    contact = (await inbound_for(owner))["contact_id"]
    unverified = await _file(
        owner, contact, kind="withdrawal", identity_checked=False, params={"purpose": "marketing"}
    )
    assert unverified["status"] == "unverified"
    r = await owner.post(f"/api/v1/privacy/requests/{unverified['id']}/approve")
    assert r.status_code == 409 and "not verified" in r.json()["detail"]

    req = await _file(owner, contact, kind="objection", params={"purpose": "marketing"})
    r = await owner.post(f"/api/v1/privacy/requests/{req['id']}/approve")
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed" and done["closed_at"] is not None
    assert (
        done["result"]["right"] == "objection" and done["result"]["subject"] == f"contact:{contact}"
    )
    assert "approved" in [e["action"] for e in done["events"]]
    listed = (await owner.get(f"/api/v1/privacy/requests?contact_id={contact}")).json()
    assert {r["id"] for r in listed} == {unverified["id"], req["id"]}


async def test_the_workspace_tab_shows_the_clock_and_decides(app: Any) -> None:
    owner, _ = await owner_of(app)
    contact = (await inbound_for(owner))["contact_id"]
    req = await _file(owner, contact, kind="objection", params={"purpose": "marketing"})
    page = await owner.get("/workspace/requests")
    assert page.status_code == 200 and req["reference"] in page.text and "29 days left" in page.text
    detail = await owner.get(f"/workspace/requests/{req['id']}")
    assert detail.status_code == 200 and "Approve and carry out" in detail.text
    r = await owner.post(
        f"/workspace/requests/{req['id']}/refuse", data={"reason": "x", "csrf_token": owner.csrf}
    )
    assert r.status_code == 422 and "reasons" in r.text
    r = await owner.post(
        f"/workspace/requests/{req['id']}/approve", data={"csrf_token": owner.csrf}
    )
    assert r.status_code == 303, r.text
    assert (await request_row(req["reference"])).status == "completed"


async def test_reminders_at_seven_days_and_one_day_once_each(app: Any) -> None:
    owner, _ = await owner_of(app)
    contact = (await inbound_for(owner))["contact_id"]
    req = await _file(owner, contact, kind="restriction")

    async def tick() -> dict[str, int]:
        async with unit_of_work() as db:
            return await tasks.tick(db)

    assert (await tick())["reminders"] == 0
    clock.advance(timedelta(days=23, hours=1))  # 6 days 23 hours left
    assert (await tick())["reminders"] == 1
    assert (await tick())["reminders"] == 0  # once
    clock.advance(timedelta(days=6))  # 23 hours left
    assert (await tick())["reminders"] == 1
    clock.advance(timedelta(days=2))
    counts = await tick()
    assert counts["reminders"] == 0 and counts["overdue"] == 1
    reminders = [m for m in await outbox(to=owner.email) if "Reminder" in m.subject]
    assert len(reminders) == 2 and req["reference"] in reminders[0].subject
    assert (await actions(req["id"]))[-2:] == ["reminder_7d", "reminder_1d"]


async def test_delete_my_data_on_whatsapp_files_a_verified_request(app: Any) -> None:
    owner, _ = await owner_of(app)
    await inbound_for(owner)
    replies = await count(OutboxMessage)
    await delivered(owner.client, text_message("Delete my data!"))
    await drain()
    assert await count(RequestDialog) == 1
    assert await count(OutboxMessage) == replies + 1  # "reply YES to confirm"
    assert await all_requests() == []

    await delivered(owner.client, text_message("yes"))
    await drain()
    [req] = await all_requests()
    assert (req.kind, req.source, req.status, req.verification) == (
        "erasure",
        "whatsapp",
        "pending",
        "whatsapp_channel",
    )
    assert await count(RequestDialog) == 0
    assert await count(OutboxMessage) == replies + 2  # reference and due date in the chat
    assert "notified" in await actions(req.id)


async def test_my_data_in_arabic_opens_the_menu(app: Any) -> None:
    owner, _ = await owner_of(app)
    await inbound_for(owner)
    await delivered(owner.client, text_message("بياناتي"))
    await drain()
    # One at a time: processors may take separate webhooks in any order (as Meta may send them).
    await delivered(owner.client, text_message("\u0661"))  # Arabic digit one: a copy of my data
    await drain()
    await delivered(owner.client, text_message("نعم"))
    await drain()
    [req] = await all_requests()
    assert req.kind == "access" and req.status == "pending"


async def test_an_approved_access_request_runs_as_a_job_and_offers_the_export(app: Any) -> None:
    import asyncio

    owner, _ = await owner_of(app)
    contact = (await inbound_for(owner))["contact_id"]
    req = await _file(owner, contact, kind="access")
    r = await owner.post(f"/api/v1/privacy/requests/{req['id']}/approve")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_progress"
    async with asyncio.timeout(30):
        while (row := await request_row(req["reference"])).status == "in_progress":
            await asyncio.sleep(0.1)
    assert row.status == "completed" and row.artifact_id is not None
    done = (await owner.get(f"/api/v1/privacy/requests/{req['id']}")).json()
    assert done["result"]["right"] == "access" and done["result"]["artifact_id"] == row.artifact_id
