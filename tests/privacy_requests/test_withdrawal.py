"""A subject withdraws their own request before it is carried out: through the link in our
message (privacy center), from account settings, or by writing CANCEL <reference> on WhatsApp.
Audited; the subject and the deciders are told; a request being carried out cannot be."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit.errors import Conflict
from connectx.models.audit import AuditEvent
from connectx.models.outbox import OutboxMessage
from connectx.privacy.requests import intake, service
from tests.privacy_requests.support import (
    actions,
    all_requests,
    mailed_code,
    reference_in,
    request_row,
    text_message,
)
from tests.privacy_requests.test_privacy_center import _file, _verify
from tests.support.factories import make_user, signed_in
from tests.support.mail import outbox
from tests.web.html import parse
from tests.whatsapp.support import count, delivered, drain, inbound_for
from tests.workspaces.helpers import owner_of


def _withdraw_link(body: str) -> str:
    match = re.search(r"https?://\S+/privacy-center/withdraw\?\S+", body)
    assert match, "no withdrawal link in the message"
    return match.group(0)


async def _audited(request_id: int) -> list[dict[str, Any]]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent.data).where(AuditEvent.action == "privacy_request.withdrawn")
        return [d for d in (await db.execute(stmt)).scalars() if d.get("request") == request_id]


async def test_the_link_in_our_message_withdraws_once(client: httpx.AsyncClient) -> None:
    await make_user(email="holder@example.com")
    r = await _file(client, address="holder@example.com", kind="erasure")
    reference = reference_in(r.text)
    assert (await _verify(client, reference, await mailed_code("holder@example.com"))).is_success
    [received] = await outbox(to="holder@example.com", kind="privacy_request")
    link = urlsplit(_withdraw_link(received.body))
    url = f"{link.path}?{link.query}"

    page = await client.get(url)  # a GET (a mail scanner) changes nothing
    assert page.status_code == 200 and (await request_row(reference)).status == "pending"
    form = parse(page.text).find("form", id="withdraw-form")
    assert form is not None
    fields = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input")}

    forged = {**fields, "token": "0" * 64}
    assert (await client.post("/privacy-center/withdraw", data=forged)).status_code == 404
    assert (await client.get(f"{link.path}?ref={reference}&token=")).status_code == 404
    assert (await request_row(reference)).status == "pending"

    done = await client.post("/privacy-center/withdraw", data=fields)
    assert done.status_code == 200 and parse(done.text).find("p", id="request-withdrawn")
    req = await request_row(reference)
    assert req.status == "withdrawn" and req.closed_at is not None
    assert (await actions(req.id))[-2:] == ["withdrawn", "notified"]
    [data] = await _audited(req.id)
    assert data["via"] == "link" and "holder" not in str(data)  # ids only
    told = await outbox(to="holder@example.com", kind="privacy_request")
    assert any("withdrawn" in m.subject for m in told)

    again = await client.post("/privacy-center/withdraw", data=fields)
    assert again.status_code == 409 and "no longer be withdrawn" in again.text
    async with unit_of_work() as db:  # and nobody can approve it any more
        row = await intake.by_reference(db, reference)
        assert row is not None
        try:
            await service.approve(db, row, actor="user:1")
        except Conflict as exc:
            assert "withdrawn already" in exc.detail
        else:
            raise AssertionError("a withdrawn request was approved")


async def test_account_settings_withdraw_a_waiting_request_not_one_being_carried_out(
    app: Any, client: httpx.AsyncClient
) -> None:
    user = await make_user(email="member@example.com")
    csrf = await signed_in(client, "member@example.com")
    for kind in ("rectification", "access"):
        data = {"kind": kind, "new_name": "Ada King", "csrf_token": csrf}
        r = await client.post("/account/privacy/requests", data=data)
        assert r.status_code == 303, r.text
    rect, access = await all_requests()
    assert rect.subject == access.subject == f"user:{user.id}"
    page = await client.get("/account/privacy")
    assert parse(page.text).find("button", id=f"withdraw-{rect.reference}") is not None

    async with unit_of_work() as db:  # access is approved: it is carried out (a job)
        row = await intake.by_reference(db, access.reference)
        assert row is not None
        await service.approve(db, row, actor="operator")
    carried = (await request_row(access.reference)).status
    assert carried in ("in_progress", "completed")

    r = await client.post(
        f"/account/privacy/requests/{rect.id}/withdraw", data={"csrf_token": csrf}
    )
    assert r.status_code == 303, r.text
    assert (await request_row(rect.reference)).status == "withdrawn"
    [data] = await _audited(rect.id)
    assert data["via"] == "account"

    busy = await client.post(
        f"/account/privacy/requests/{access.id}/withdraw", data={"csrf_token": csrf}
    )
    assert busy.status_code == 409 and "can no longer be withdrawn" in busy.text
    assert (await request_row(access.reference)).status in ("in_progress", "completed")

    # Someone else's request is not theirs to withdraw.
    await make_user(email="other@example.com")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        other_csrf = await signed_in(other, "other@example.com")
        r = await other.post(
            f"/account/privacy/requests/{rect.id}/withdraw", data={"csrf_token": other_csrf}
        )
    assert r.status_code == 404


async def test_cancel_with_the_reference_on_whatsapp_withdraws(app: Any) -> None:
    owner, _ = await owner_of(app)
    await inbound_for(owner)
    await delivered(owner.client, text_message("DELETE MY DATA"))
    await drain()
    await delivered(owner.client, text_message("yes"))
    await drain()
    [req] = await all_requests()
    assert req.status == "pending"

    # Another customer cannot cancel it.
    stranger = text_message(f"cancel {req.reference}", sender="16505559999")
    value = stranger["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["user_id"] = value["messages"][0]["from_user_id"] = "US.999000111222"
    await delivered(owner.client, stranger)
    await drain()
    assert (await request_row(req.reference)).status == "pending"

    replies = await count(OutboxMessage)
    await delivered(owner.client, text_message(f"CANCEL {req.reference}"))
    await drain()
    req = await request_row(req.reference)
    assert req.status == "withdrawn"
    assert await count(OutboxMessage) == replies + 1  # "withdrawn" in the chat
    [data] = await _audited(req.id)
    assert data["via"] == "whatsapp"

    await delivered(owner.client, text_message(f"الغاء {req.reference}"))  # again: told why not
    await drain()
    assert await count(OutboxMessage) == replies + 2
