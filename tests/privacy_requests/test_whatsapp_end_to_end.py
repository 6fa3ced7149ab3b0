"""A customer writes "DELETE MY DATA" to the business through the simulator (signed webhooks in,
the pacer's real HTTP out): the chat guides them, the request is filed verified by the channel,
the workspace approves it over HTTP, the customer is told on their phone, and the erasure runs
as a job once that last message has left. "MY DATA" brings the customer a download link that
works once, and the secrets sent to them (link, withdrawal link, code) stay out of what agents
read."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from connectx.models.contact import Contact
from connectx.models.outbox import OutboxMessage
from connectx.privacy.requests.notices import CODE_WITHHELD, DOWNLOAD_WITHHELD, WITHDRAW_WITHHELD
from tests.jobs.support import eventually
from tests.outbound.conftest import World
from tests.privacy_requests.support import actions, all_requests, request_row
from tests.support.mail import first_link, outbox
from tests.web.html import parse
from tests.whatsapp.support import count, drain
from tests.workspaces.helpers import join, new_client

CUSTOMER = "16505550177"
DOWNLOAD = "Download your data here"
DOWNLOAD_PATH = "/privacy/exports/download"
HTMX = {"hx-request": "true", "accept": "text/html"}


def _text(sent: dict[str, Any]) -> str:
    return str(sent["body"].get("text", {}).get("body", ""))


async def _texts(world: World, n: int) -> list[str]:
    return [_text(s) for s in await world.sent(n, kind="message", to=CUSTOMER)]


async def test_delete_my_data_end_to_end(world: World) -> None:
    await world.customer_says(CUSTOMER, "DELETE MY DATA")
    [confirm] = await _texts(world, 1)
    assert "erasing your data" in confirm and "YES" in confirm

    await world.customer_says(CUSTOMER, "Yes")
    texts = await _texts(world, 2)
    [req] = await all_requests()
    assert (req.kind, req.source, req.status, req.verification) == (
        "erasure",
        "whatsapp",
        "pending",
        "whatsapp_channel",
    )
    assert req.reference in texts[1] and "will answer it by" in texts[1]

    r = await world.owner.post(f"/api/v1/privacy/requests/{req.id}/approve")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_progress"
    texts = await _texts(world, 3)
    assert "last message" in texts[2]

    # The job waits for that message to leave the outbox, then runs the executor.
    async with asyncio.timeout(40):
        while True:
            [req] = await all_requests()
            if req.status != "in_progress":
                break
            await asyncio.sleep(0.2)
    steps = await actions(req.id)
    assert req.status == "completed", steps
    assert req.closed_at is not None and "completed" in steps
    # The customer is erased: no contact of this workspace still holds a number.
    assert await count(Contact, Contact.phone_index.is_not(None)) == 0


async def test_my_data_link_reaches_the_customer_only(
    world: World, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The one-time download link is the customer's: their phone gets it and it works once, but
    the conversation the workspace's agents read keeps the message with the link withheld (an
    agent opening it would take the customer's copy and use up their one download)."""
    caplog.set_level(logging.INFO)
    agent = await join(app, world.owner, "agent")
    await world.customer_says(CUSTOMER, "MY DATA")
    await world.customer_says(CUSTOMER, "1")  # a copy of my data
    await world.customer_says(CUSTOMER, "YES")
    [req] = await all_requests()
    assert (req.kind, req.status) == ("access", "pending")

    r = await world.owner.post(f"/api/v1/privacy/requests/{req.id}/approve")
    assert r.status_code == 200, r.text
    async with asyncio.timeout(40):
        while (req := await request_row(req.reference)).status == "in_progress":
            await asyncio.sleep(0.2)
    assert req.status == "completed", await actions(req.id)

    # The customer's phone: the real link.
    async with asyncio.timeout(15):
        while not (done := [t for t in await _texts(world, 1) if DOWNLOAD in t]):
            await asyncio.sleep(0.1)
    link = first_link(done[0])
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert len(token) >= 40

    # What an agent can read: the conversation over the API and the inbox thread.
    conversation = await world.conversation_of(f"+{CUSTOMER}")
    async with asyncio.timeout(15):
        while True:  # sent: the outbox row is done with the real text
            await drain()
            r = await agent.get(f"/api/v1/conversations/{conversation}/messages")
            assert r.status_code == 200, r.text
            [notice] = [m for m in r.json()["items"] if DOWNLOAD in (m.get("body") or "")]
            if notice["status"] != "queued":
                break
            await asyncio.sleep(0.1)
    assert token not in r.text and DOWNLOAD_PATH not in r.text
    # The withdrawal link is theirs alone too (anyone holding it can withdraw the request).
    assert "/privacy-center/withdraw" not in r.text and WITHDRAW_WITHHELD in r.text
    assert any("/privacy-center/withdraw?" in t for t in await _texts(world, 1))
    assert notice["direction"] == "out" and DOWNLOAD_WITHHELD in notice["body"]
    page = await agent.get(f"/inbox/c/{conversation}", headers={"hx-request": "true"})
    assert page.status_code == 200, page.text
    assert DOWNLOAD_WITHHELD in page.text and token not in page.text
    assert DOWNLOAD_PATH not in page.text

    # What we keep: the outbox row forgot the real text once sent; audit events hold ids only.
    async with unit_of_work() as db:
        [row] = (
            await db.execute(select(OutboxMessage).where(OutboxMessage.message_id == notice["id"]))
        ).scalars()
        assert row.status == "sent" and row.payload_enc is None
        audit = [str(e.data) for e in (await db.execute(select(AuditEvent))).scalars()]
    assert not [d for d in audit if token in d]
    ours = [rec for rec in caplog.records if rec.name.startswith("connectx")]
    assert ours and not [rec for rec in ours if token in rec.getMessage()]

    # The link works for the customer, once.
    async with new_client(app) as phone:
        target = link[link.index(DOWNLOAD_PATH) :]
        assert (await phone.get(target)).status_code == 200
        form = {"token": token, "csrf_token": phone.cookies.get("cx_csrf")}
        got = await phone.post(DOWNLOAD_PATH, data=form)
        assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
        assert (await phone.post(DOWNLOAD_PATH, data=form)).status_code == 410


async def _file_for_them(world: World) -> int:
    """The workspace files an access request for the customer (who wrote "hello") without
    vouching for them: a code goes to their phone. Returns the conversation's id."""
    await world.customer_says(CUSTOMER, "hello")
    conversation = await world.conversation_of(f"+{CUSTOMER}")
    r = await world.owner.get("/api/v1/conversations")
    [contact] = [c["contact"]["id"] for c in r.json()["items"] if c["id"] == conversation]
    body = {"contact_id": contact, "kind": "access", "identity_checked": False}
    r = await world.owner.post("/api/v1/privacy/requests", json=body)
    assert r.status_code == 201, r.text
    return conversation


async def _code_on_the_phone(world: World) -> dict[str, Any]:
    """The message with the verification code, as the simulator's customer got it."""
    async with asyncio.timeout(15):
        while True:
            for sent in await world.sent(1, kind="message", to=CUSTOMER):
                if "verification code is" in _text(sent):
                    return sent
            await asyncio.sleep(0.1)


async def test_a_code_for_a_request_filed_on_their_behalf_stays_theirs(world: World) -> None:
    """The verification code reaches the customer's phone; the conversation keeps a placeholder
    (with the code, anyone could confirm the request on the privacy center's page)."""
    conversation = await _file_for_them(world)
    match = re.search(r"verification code is (\d{6})\.", _text(await _code_on_the_phone(world)))
    assert match
    r = await world.owner.get(f"/api/v1/conversations/{conversation}/messages")
    [kept] = [m["body"] for m in r.json()["items"] if "verification code" in (m["body"] or "")]
    assert match[1] not in kept and f"verification code is {CODE_WITHHELD}." in kept

    await world.customer_says(CUSTOMER, match[1])  # sent back from their number: verified
    [req] = await all_requests()
    assert (req.status, req.verification) == ("pending", "code_whatsapp")


async def test_a_failed_notice_whose_code_was_withheld_is_not_sent_again(world: World) -> None:
    """Meta accepts the code's notice, then reports it failed with an error that "Send again"
    answers for any other text (130429). The conversation keeps the placeholder, not the code
    (which is gone with the sent outbox row): sending the stored text again would give the
    customer "[code sent to the customer]". So the inbox offers no "Send again" and says why,
    and the route refuses with a 409 and queues nothing."""
    conversation = await _file_for_them(world)
    on_the_phone = await _code_on_the_phone(world)
    r = await world.owner.get(f"/api/v1/conversations/{conversation}/messages")
    [notice] = [m for m in r.json()["items"] if CODE_WITHHELD in (m["body"] or "")]

    failed = {"status": "failed", "code": 130429, "title": "Rate limit hit"}
    await world.sim.post("/_sim/statuses", json={"wamid": on_the_phone["wamid"], **failed})
    await world.settle()
    await world.until(conversation, notice["id"], "failed")
    page = await world.owner.get(f"/inbox/c/{conversation}/m/{notice['id']}", headers=HTMX)
    assert page.status_code == 200, page.text
    bubble = parse(page.text).find("article")
    assert "Rate limit hit" in bubble.text and "cannot be sent again" in bubble.text
    retry = f"/inbox/c/{conversation}/m/{notice['id']}/retry"
    assert not bubble.find_all("button", **{"hx-post": retry})

    async def outbox() -> list[int]:
        async with unit_of_work() as db:
            return list((await db.execute(select(OutboxMessage.id))).scalars())

    queued = await outbox()
    r = await world.owner.post(retry, headers=HTMX)
    assert r.status_code == 409, r.text
    assert "one-time link or code" in r.json()["detail"]
    await world.settle()
    assert await outbox() == queued  # nothing queued
    r = await world.owner.get(f"/api/v1/conversations/{conversation}/messages")
    assert [m["id"] for m in r.json()["items"] if CODE_WITHHELD in (m["body"] or "")] == [
        notice["id"]
    ]
    assert CODE_WITHHELD not in str(await world.sent(1, kind="message", to=CUSTOMER))


async def test_a_failed_notice_is_on_the_requests_timeline(world: World) -> None:
    """The code's notice is queued ("code_sent" via whatsapp), then Meta reports it failed: the
    request's timeline says the notice was not delivered (message id and Meta's code and title,
    nothing of the person), the API and the page show it, and the deciders are e-mailed."""
    await _file_for_them(world)
    on_the_phone = await _code_on_the_phone(world)
    [req] = await all_requests()
    failed = {"status": "failed", "code": 131047, "title": "Re-engagement message"}
    await world.sim.post("/_sim/statuses", json={"wamid": on_the_phone["wamid"], **failed})
    await world.settle()
    async with asyncio.timeout(15):
        while "notice_failed" not in await actions(req.id):
            await asyncio.sleep(0.1)
    r = await world.owner.get(f"/api/v1/privacy/requests/{req.id}")
    [entry] = [e for e in r.json()["events"] if e["action"] == "notice_failed"]
    assert entry["data"]["via"] == "whatsapp" and entry["data"]["step"] == "code"
    assert entry["data"]["error"] == "131047 Re-engagement message"
    assert set(entry["data"]) == {"request", "kind", "step", "via", "message", "error"}
    page = await world.owner.get(f"/workspace/requests/{req.id}")
    assert "not delivered" in parse(page.text).find("p", id="notice-failed").text
    assert "131047 Re-engagement message" in page.text
    mails = await outbox(kind="privacy_request")
    assert any("was not delivered" in m.subject for m in mails), mails
    # The same failure reported again adds nothing.
    await world.sim.post("/_sim/statuses", json={"wamid": on_the_phone["wamid"], **failed})
    await world.settle()
    assert (await actions(req.id)).count("notice_failed") == 1


async def test_a_failure_that_beat_the_sends_answer_is_on_the_requests_timeline(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed callback can arrive before the sender stores Meta's answer (the status waits in
    message_status_events); the sender then applies it (``apply_recorded_statuses``), and that
    path puts the notice's failure on the timeline too. The callback's own path is held off
    here, so only the sender's can have added the entry."""
    from connectx.messages.service import apply_recorded_statuses
    from connectx.models.message import Message
    from connectx.privacy.requests import notices

    await _file_for_them(world)
    on_the_phone = await _code_on_the_phone(world)
    [req] = await all_requests()
    real = notices.on_failed

    async def held_off(*_: Any) -> int:
        return 0

    monkeypatch.setattr(notices, "on_failed", held_off)
    failed = {"status": "failed", "code": 131047, "title": "Re-engagement message"}
    await world.sim.post("/_sim/statuses", json={"wamid": on_the_phone["wamid"], **failed})
    await world.settle()
    assert "notice_failed" not in await actions(req.id)
    monkeypatch.setattr(notices, "on_failed", real)
    async with unit_of_work() as db:
        wamid = on_the_phone["wamid"]
        message = (await db.execute(select(Message).where(Message.wamid == wamid))).scalar_one()
        await apply_recorded_statuses(db, [message])
    assert (await actions(req.id)).count("notice_failed") == 1


async def test_two_reports_of_one_failed_notice_at_once_add_one_entry(world: World) -> None:
    """PostgreSQL: the sender and a status callback can report the same notice's failure in
    two transactions at once; the second waits for the first and adds nothing."""
    from connectx.config import get_settings
    from connectx.models.message import Message
    from connectx.privacy.requests import notices

    if get_settings().is_sqlite:
        pytest.skip("SQLite's writers take turns: the two transactions cannot overlap")
    await _file_for_them(world)
    on_the_phone = await _code_on_the_phone(world)
    [req] = await all_requests()

    # The customer's phone has the message as soon as Meta accepts it; the sender stores the
    # wamid Meta answered with just after, in its own transaction.
    async def stored_id() -> int | None:
        async with unit_of_work() as db:
            found = select(Message.id).where(Message.wamid == on_the_phone["wamid"])
            return (await db.execute(found)).scalar_one_or_none()

    message_id = await eventually(stored_id, lambda found: found is not None, 15, "the wamid")
    first_marked = asyncio.Event()
    release = asyncio.Event()

    async def report(hold: bool) -> int:
        async with unit_of_work() as db:
            marked = await notices.on_failed(db, [(message_id, 131047, "Re-engagement message")])
            if hold:
                first_marked.set()
                await release.wait()  # not committed yet
            return marked

    first = asyncio.create_task(report(hold=True))
    try:
        await asyncio.wait_for(first_marked.wait(), 15)
        second = asyncio.create_task(report(hold=False))
        await asyncio.sleep(0.5)
        waited = not second.done()  # it waits for the first transaction
    finally:
        release.set()  # (a failure here must not leave a transaction open)
    marked = [await first, await asyncio.wait_for(second, 15)]
    assert waited and marked == [1, 0]
    assert (await actions(req.id)).count("notice_failed") == 1


async def test_a_notice_the_api_refuses_is_on_the_requests_timeline(world: World) -> None:
    """The other way a notice fails: Meta refuses the send itself (131047) and the pacer records
    the message failed; the timeline says so too."""
    await world.sim.post("/_sim/faults", json={"code": 131047, "count": 1})
    await _file_for_them(world)
    [req] = await all_requests()
    async with asyncio.timeout(30):
        while "notice_failed" not in await actions(req.id):
            await asyncio.sleep(0.1)
    r = await world.owner.get(f"/api/v1/privacy/requests/{req.id}")
    [entry] = [e for e in r.json()["events"] if e["action"] == "notice_failed"]
    assert entry["data"]["error"].startswith("131047"), entry
