"""``mail.deliver``: send a queued message by SMTP, or keep it in the local outbox.

The message is read and decrypted in a short transaction of its own, so that the SMTP
conversation never holds the database (SQLite has one writer); the final status is written in the
job's transaction, together with the job being marked done. SMTP failures raise, and the job
retries with backoff; after the last attempt the message is marked ``failed``. Delivery is at least
once: if the process dies between the SMTP peer accepting the message and the commit, the retry
sends it again. Logs name the message id and kind only, never an address, subject or body.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import get_settings
from connectx.db.session import unit_of_work
from connectx.jobs import runner
from connectx.jobs.registry import task
from connectx.kit import clock
from connectx.kit.crypto import KeyDestroyed
from connectx.mail import repository as repo
from connectx.mail import smtp
from connectx.mail.service import MARKETING_KINDS, open_message
from connectx.privacy import unsubscribe

log = logging.getLogger(__name__)

SETTLED = {"sent", "local", "failed", "erased"}


@task("mail.deliver")
async def deliver(db: AsyncSession, args: dict[str, Any]) -> None:
    mail_id = int(args["mail_id"])
    smtp_url = get_settings().smtp_url

    async with unit_of_work() as read:
        row = await repo.get(read, mail_id)
        if row is None or row.status in SETTLED:
            return
        kind = row.kind
        try:
            opened = await open_message(read, row)
        except KeyDestroyed:
            # Its subject was erased before it went out: there is nothing left to send.
            await repo.set_status(read, mail_id, "erased")
            log.info("mail %s (%s) not sent: its subject was erased", mail_id, kind)
            return
        if smtp_url:
            await repo.count_attempt(read, mail_id)
        headers = {}
        if kind in MARKETING_KINDS and row.user_id is not None:  # RFC 8058 one-click
            link = await unsubscribe.link_for(row.user_id, kind)
            headers = {
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }

    if not smtp_url:
        await repo.set_status(db, mail_id, "local")
        log.info(
            "mail %s (%s) kept in the local outbox (CONNECTX_SMTP_URL is not set)", mail_id, kind
        )
        return

    try:
        target = smtp.parse_url(smtp_url)
        message = smtp.compose(
            sender=get_settings().mail_from,
            to=opened.to,
            subject=opened.subject,
            body=opened.body,
            headers=headers,
        )
        await smtp.send(target, message)
    except Exception as exc:
        job = runner.current()
        last = job is not None and job.attempt >= job.max_attempts
        if last:
            async with unit_of_work() as final:
                await repo.set_status(final, mail_id, "failed")
        log.warning(
            "mail %s (%s) not delivered: %s%s",
            mail_id,
            kind,
            type(exc).__name__,
            " (giving up)" if last else " (will retry)",
        )
        raise
    await repo.set_status(db, mail_id, "sent", sent_at=clock.now())
    log.info("mail %s (%s) delivered by SMTP", mail_id, kind)
