"""Mail delivery: through a real SMTP peer when CONNECTX_SMTP_URL is set, retried with the job's
backoff while the peer is down, kept in the local outbox (readable with `connectx mail`) when it
is not set. Logs never carry an address, a subject or a body."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from connectx import cli
from connectx.audit import repository as audit_repo
from connectx.config import get_settings
from connectx.db.session import unit_of_work
from connectx.jobs import queue
from connectx.jobs import repository as jobs_repo
from connectx.kit import clock
from connectx.mail import repository as mail_repo
from connectx.mail import service as mail
from connectx.models.job import Job
from connectx.models.mail import MailMessage
from connectx.privacy.vault import Vault
from tests.support.smtp import SmtpServer

TO = "Ada Lovelace <ada@example.com>"
SUBJECT = "Your lemon cake recipe"
BODY = "Grandmother's lemon cake: three lemons, patience.\nhttp://testserver/verify?t=x"
PRIVATE = ("ada@example.com", "Lovelace", "lemon cake", "Grandmother")


async def send(**overrides: Any) -> int:
    fields = {
        "to": TO,
        "subject": SUBJECT,
        "body": BODY,
        "kind": "verify_email",
        "subject_ref": "user:1",
    } | overrides
    async with unit_of_work() as db:
        message = await mail.send(db, **fields)
        return message.id


async def message(mail_id: int) -> MailMessage:
    async with unit_of_work() as db:
        row = await mail_repo.get(db, mail_id)
        assert row is not None
        return row


async def delivery_job(mail_id: int) -> Job:
    async with unit_of_work() as db:
        for status in ("pending", "running", "done", "failed"):
            for job in await jobs_repo.by_status(db, status):
                if job.name == "mail.deliver" and job.args == {"mail_id": mail_id}:
                    return job
    raise AssertionError(f"no mail.deliver job for mail {mail_id}")


async def until(probe: Any, check: Any, timeout: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last value {value!r}")
        await asyncio.sleep(0.05)


def assert_private_data_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    # Everything the platform's process logged (the test's SMTP peer, aiosmtpd's "mail.log",
    # logs what it receives: that is the other side of the wire).
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    for secret in PRIVATE:
        assert secret not in text


@pytest.mark.usefixtures("app")
async def test_mail_is_delivered_through_smtp(
    smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    mail_id = await send()
    received = await smtp_server.wait_for(to="ada@example.com")
    assert received["Subject"] == SUBJECT
    assert received["To"] == TO
    assert received["From"] == get_settings().mail_from
    assert received["Message-ID"] and received["Date"]
    assert received.get_content().rstrip("\n") == BODY
    assert smtp_server.recipients[-1] == ["ada@example.com"]

    row = await until(lambda: message(mail_id), lambda m: m.status == "sent")
    assert row.attempts == 1 and row.sent_at is not None
    job = await until(lambda: delivery_job(mail_id), lambda j: j.status == "done")
    assert job.attempts == 1
    assert len(smtp_server.messages) == 1
    assert_private_data_not_logged(caplog)


@pytest.mark.usefixtures("app")
async def test_delivery_retries_while_the_smtp_peer_is_down(
    smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.stop()
    mail_id = await send()
    job = await until(
        lambda: delivery_job(mail_id), lambda j: j.status == "pending" and j.attempts == 1
    )
    assert job.last_error is not None and job.last_error.startswith("SMTP")
    assert job.run_after > clock.now()  # backing off
    row = await message(mail_id)
    assert (row.status, row.attempts) == ("queued", 1)

    smtp_server.start()
    clock.advance(timedelta(seconds=get_settings().job_backoff_base_s + 1))
    received = await smtp_server.wait_for(to="ada@example.com", timeout=10)
    assert received["Subject"] == SUBJECT
    row = await until(lambda: message(mail_id), lambda m: m.status == "sent")
    assert row.attempts == 2
    job = await until(lambda: delivery_job(mail_id), lambda j: j.status == "done")
    assert job.attempts == 2
    assert len(smtp_server.messages) == 1
    assert_private_data_not_logged(caplog)


@pytest.mark.usefixtures("app")
async def test_delivery_gives_up_after_the_last_attempt(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mail, "DELIVERY_ATTEMPTS", 2)
    smtp_server.stop()
    mail_id = await send()
    await until(lambda: delivery_job(mail_id), lambda j: j.attempts == 1 and j.status == "pending")
    clock.advance(timedelta(seconds=get_settings().job_backoff_base_s + 1))
    job = await until(lambda: delivery_job(mail_id), lambda j: j.status == "failed")
    assert job.attempts == 2
    row = await message(mail_id)
    assert (row.status, row.attempts) == ("failed", 2)


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args))


@pytest.mark.usefixtures("app")
async def test_without_smtp_mail_stays_in_the_local_outbox_for_the_operator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert get_settings().smtp_url is None
    mail_id = await send()
    other = await send(to="grace@example.com", subject="Invitation", kind="invitation")
    for i in (mail_id, other):
        row = await until(lambda i=i: message(i), lambda m: m.status == "local")
        assert row.sent_at is None
    assert (await delivery_job(mail_id)).status == "done"

    listing = await asyncio.to_thread(run_cli, "mail", "list")
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert "ada@example.com" in lines[2] and f"{mail_id}" in lines[2] and "local" in lines[2]
    assert "grace@example.com" in lines[1] and "invitation" in lines[1]  # newest first

    only = await asyncio.to_thread(run_cli, "mail", "list", "--status", "sent")
    assert only.exit_code == 0 and "No sent messages." in only.output

    shown = await asyncio.to_thread(run_cli, "mail", "show", str(mail_id))
    assert shown.exit_code == 0, shown.output
    assert f"To:      {TO}" in shown.output
    assert f"Subject: {SUBJECT}" in shown.output
    assert BODY in shown.output

    missing = await asyncio.to_thread(run_cli, "mail", "show", "999999")
    assert missing.exit_code == 1 and "No message 999999" in missing.output

    # Reading personal data from the outbox is on the audit trail (ids only).
    async with unit_of_work() as db:
        events = [e async for e in audit_repo.stream(db)]
    viewed = [e for e in events if e.action == "mail.viewed"]
    assert [(e.actor, e.subject, e.data) for e in viewed] == [
        ("operator", "user:1", {"mail_id": mail_id})
    ]
    assert any(e.action == "mail.outbox_listed" for e in events)
    assert_private_data_not_logged(caplog)


@pytest.mark.usefixtures("app")
async def test_mail_to_an_erased_subject_is_never_sent(smtp_server: SmtpServer) -> None:
    real = queue.current_waker()

    async def hold(_job_id: int) -> None:  # the wake-up is lost; the reconciler will find it
        return None

    queue.set_waker(hold)
    try:
        mail_id = await send(subject_ref="user:77")
    finally:
        queue.set_waker(real)
    async with unit_of_work() as db:
        await Vault(db).destroy_subject(None, "user:77")
    row = await until(lambda: message(mail_id), lambda m: m.status == "erased")
    assert row.sent_at is None
    # The mail row and the job finish in separate transactions: wait for the job too.
    await until(lambda: delivery_job(mail_id), lambda job: job.status == "done")
    assert smtp_server.messages == []
