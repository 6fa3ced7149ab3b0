"""Recipients (GDPR art. 19): a restriction, an erasure or a rectification is told to each
recipient of the subject's data that has an endpoint: a signed webhook (HMAC-SHA256 over the exact
body, through aiohttp to a real HTTP server on loopback) retried durably as a job until it is
taken, or an e-mail with an acknowledgement link. The acknowledgement clears the notice's body
and destroys its key."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.privacy_rights import RecipientNotice
from connectx.privacy.rights import Right, execute, notices
from tests.privacy import rights_world as w
from tests.support.mail import first_link, outbox
from tests.whatsapp.support import rows

SECRET = "affiliates-shared-secret-9f2c"


@dataclass
class Inbox:
    url: str = ""
    answers: list[int] = field(default_factory=list)  # statuses to answer, then 200
    got: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((await request.read(), dict(request.headers)))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)


@asynccontextmanager
async def recipient_server() -> AsyncIterator[Inbox]:
    inbox = Inbox()
    app = web.Application()
    app.router.add_post("/dsr", inbox.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    inbox.url = f"http://127.0.0.1:{port}/dsr"
    try:
        yield inbox
    finally:
        await runner.cleanup()


async def _until(check: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def _notices(subject: str) -> list[RecipientNotice]:
    return await rows(RecipientNotice, RecipientNotice.subject == subject)


async def test_a_restriction_is_told_to_recipients_by_signed_webhook_and_mail(
    rights_world: w.World, client: Any
) -> None:
    world = rights_world
    async with recipient_server() as inbox:
        inbox.answers = [503]  # the first try fails: the job retries
        async with unit_of_work() as db:
            await notices.set_endpoint(
                db, "affiliates", webhook_url=inbox.url, secret=SECRET, email=None
            )
            await notices.set_endpoint(
                db, "hosting", webhook_url=None, secret=None, email="privacy@host.example"
            )
        async with unit_of_work() as db:
            result = await execute(db, Right.RESTRICTION, world.subject, request_id=12)
        assert sorted(result.recipients) == ["affiliates", "hosting"]
        assert result.counts["recipients_without_endpoint"] >= 1  # e.g. Meta: no endpoint

        await _until(lambda: _has(inbox, 1))
        clock.advance(timedelta(minutes=10))  # past the job's backoff
        await _until(lambda: _has(inbox, 2))
    body, headers = inbox.got[-1]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-ConnectX-Signature"], expected)
    notice = json.loads(body)
    assert notice["format"] == "connectx.recipient_notice/1" and notice["right"] == "restriction"
    assert notice["subject"] == world.subject.ref and notice["changes"] == {"restriction": "placed"}
    assert notice["identifiers"]["user.name"] == w.ZARA.name  # affiliates receive names
    assert "user.unique_id" not in notice["identifiers"]  # ... but not WhatsApp user ids

    async def sent() -> bool:
        found = {n.recipient_id: n.status for n in await _notices(world.subject.ref)}
        return found == {"affiliates": "sent", "hosting": "sent"}

    await _until(sent)
    [mail] = await outbox(to="privacy@host.example")
    assert "restriction" in mail.body and w.ZARA.phone in mail.body

    # Acknowledged: once, through the link; the body is gone and its key destroyed.
    ack = urlsplit(notice["ack_url"])
    r = await client.post(f"{ack.path}?{ack.query}", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    again = await client.post(f"{ack.path}?{ack.query}", headers={"Accept": "application/json"})
    assert again.status_code == 410
    page_link = urlsplit(first_link(mail.body))
    page = await client.get(f"{page_link.path}?{page_link.query}")
    assert page.status_code == 200 and "Acknowledge" in page.text
    done = await client.post(f"{page_link.path}?{page_link.query}")
    assert done.status_code == 200 and "acknowledged" in done.text
    for n in await _notices(world.subject.ref):
        assert n.status == "acknowledged" and n.body_enc is None
        info = await notices.Vault().key_info(None, notices.notice_subject(n.id))
        assert info is not None and info.destroyed


async def _has(inbox: Inbox, n: int) -> bool:
    return len(inbox.got) >= n


async def test_an_erasure_notice_is_sent_after_the_subjects_key_is_gone(
    rights_world: w.World,
) -> None:
    world = rights_world
    async with recipient_server() as inbox:
        async with unit_of_work() as db:
            await notices.set_endpoint(
                db, "affiliates", webhook_url=inbox.url, secret=SECRET, email=None
            )
        async with unit_of_work() as db:
            result = await execute(db, Right.ERASURE, world.subject)
        assert result.recipients == ["affiliates"]
        await _until(lambda: _has(inbox, 1))
    notice = json.loads(inbox.got[0][0])
    assert notice["right"] == "erasure"
    assert notice["identifiers"]["user.contact.phone"] == w.ZARA.phone


async def test_bad_endpoints_are_refused_clearly() -> None:
    from connectx.kit.errors import InvalidInput

    cases = [
        ({"webhook_url": "ftp://x", "secret": SECRET, "email": None}, "https://"),
        ({"webhook_url": "https://x.example/h", "secret": "short", "email": None}, "secret"),
        ({"webhook_url": None, "secret": None, "email": None}, "either"),
    ]
    async with unit_of_work() as db:
        for kwargs, words in cases:
            try:
                await notices.set_endpoint(db, "affiliates", **kwargs)
            except InvalidInput as exc:
                assert words in exc.detail
            else:
                raise AssertionError(kwargs)
        try:
            await notices.set_endpoint(db, "nobody", webhook_url=None, secret=None, email="a@b.c")
        except InvalidInput as exc:
            assert "registry" in exc.detail


async def test_operators_set_and_list_endpoints_with_the_cli(tmp_path: Any) -> None:
    from tests.privacy.support import cli_here

    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    made = await cli_here(
        "privacy",
        "recipients",
        "set",
        "affiliates",
        "--webhook",
        "https://dpo.affiliate.example/notices",
        "--secret-file",
        str(secret),
    )
    assert made.code == 0, made.err
    bad = await cli_here("privacy", "recipients", "set", "hosting", "--email", "nope")
    assert bad.code == 1 and "not an e-mail" in bad.err
    listed = await cli_here("privacy", "recipients", "list")
    assert "https://dpo.affiliate.example/notices" in listed.out
    assert SECRET not in listed.out and "no endpoint" in listed.out
