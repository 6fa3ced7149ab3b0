"""Telling recipients (GDPR art. 19): every recipient in the registry that receives the subject's
kinds of data and has a notice endpoint configured (``connectx privacy recipients set``) is told
of a rectification, an erasure or a restriction.

A notice is a row committed with the right's execution and a ``privacy.notify_recipient`` job
(retried with backoff: durable). What the recipient needs to find the person in its own systems
(the identifiers of the categories it receives, and corrected values) is sealed under the notice's
own key ``recipient_notice:<id>`` when the notice is made, so it can still be sent after the
subject's key is destroyed; acknowledging the notice clears the body and destroys that key.

* Webhook: ``POST`` of the JSON body, ``X-ConnectX-Signature: sha256=<hex>`` = HMAC-SHA256 of the
  exact body bytes with the recipient's secret; any 2xx is delivery. The body's ``ack_url`` takes a
  ``POST`` (no body) to acknowledge.
* E-mail: a plain-text message to the recipient's privacy address with the acknowledgement link.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.config import get_settings
from connectx.jobs.queue import enqueue
from connectx.kit import clock
from connectx.kit.errors import Gone
from connectx.models.privacy_rights import RecipientEndpoint, RecipientNotice
from connectx.privacy.rights import repository as repo
from connectx.privacy.rights.base import Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.recipients import who_receives
from connectx.privacy.vault import Vault

TASK = "privacy.notify_recipient"
ATTEMPTS = 12  # about two hours with the default backoff
FORMAT = "connectx.recipient_notice/1"
SECRET_COLUMN = "recipient_endpoints.secret"  # noqa: S105 (an encryption context name)
BODY_COLUMN = "recipient_notices.body"
ACK_PATH = "/privacy/notices/ack"


def notice_subject(notice_id: int) -> str:
    return f"recipient_notice:{notice_id}"


def endpoint_subject(recipient_id: str) -> str:
    return f"recipient:{recipient_id}"


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _ack_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def notify(
    db: AsyncSession,
    subject: Subject,
    right: Right,
    ctx: Context,
    result: Result,
    *,
    identifiers: dict[str, str],
    changes: dict[str, Any] | None = None,
) -> None:
    """Queue a notice to every recipient of the subject's data that has an endpoint.
    ``identifiers`` maps data categories to values ("user.contact.phone": "+9715…") read before
    anything was changed; each recipient gets only the categories it receives. Recipients
    without an endpoint are named in the result for the operator to tell by other means."""
    endpoints = {e.recipient_id: e for e in await repo.recipient_endpoints(db)}
    vault = Vault(db)
    unreachable = []
    for listed in who_receives(subject):
        endpoint = endpoints.get(listed.id)
        if endpoint is None or not (endpoint.webhook_url or endpoint.email):
            unreachable.append(listed.id)
            continue
        token = secrets.token_urlsafe(32)
        notice = RecipientNotice(
            recipient_id=listed.id,
            workspace_id=subject.workspace_id,
            subject=subject.ref,
            right=str(right),
            request_id=ctx.request_id,
            via="webhook" if endpoint.webhook_url else "email",
            ack_hash=_ack_hash(token),
            status="pending",
            attempts=0,
            created_at=clock.now(),
        )
        await repo.add(db, notice)
        received = set(listed.categories)
        body = {
            "format": FORMAT,
            "notice_id": notice.id,
            "right": str(right),
            "subject": subject.ref,
            "workspace_id": subject.workspace_id,
            "identifiers": {k: v for k, v in sorted(identifiers.items()) if k in received},
            "changes": {
                k: v
                for k, v in sorted((changes or {}).items())
                if k in received or not k.startswith("user.")
            },
            "requested_at": clock.now().isoformat(),
            "ack_url": f"{get_settings().effective_public_url}{ACK_PATH}?token={token}",
        }
        notice.body_enc = await vault.encrypt(
            None, notice_subject(notice.id), BODY_COLUMN, json.dumps(body, sort_keys=True)
        )
        await enqueue(db, TASK, {"notice_id": notice.id}, max_attempts=ATTEMPTS)
        result.recipients.append(listed.id)
    if unreachable:
        result.counts["recipients_without_endpoint"] = len(unreachable)
    await ctx.audit(
        db,
        right,
        "recipients_notified",
        subject,
        queued=len(result.recipients),
        unreachable=len(unreachable),
    )


async def _mail_text(body: dict[str, Any]) -> str:
    lines = [
        "A data subject exercised a right under data protection law (GDPR art. 19).",
        "",
        f"Right: {body['right']}",
        f"Subject reference: {body['subject']}"
        + (f" (workspace {body['workspace_id']})" if body.get("workspace_id") else ""),
    ]
    for category, value in body.get("identifiers", {}).items():
        lines.append(f"{category}: {value}")
    for field, value in body.get("changes", {}).items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"corrected {field}: {shown}")
    lines += [
        "",
        "Please apply it to the copies you hold and confirm here (the link works once):",
        body["ack_url"],
    ]
    return "\n".join(lines)


async def deliver(db: AsyncSession, notice_id: int) -> None:
    """The job: send one notice. Raises on a failure the job should retry."""
    from connectx.jobs.runner import current

    notice = await repo.notice(db, notice_id)
    if notice is None or notice.status != "pending" or notice.body_enc is None:
        return
    endpoint = await repo.recipient_endpoint(db, notice.recipient_id)
    vault = Vault(db)
    raw = await vault.decrypt(None, notice_subject(notice.id), BODY_COLUMN, notice.body_enc)
    notice.attempts += 1
    claim = current()
    last = claim is not None and claim.attempt >= claim.max_attempts
    try:
        if endpoint is None or not (endpoint.webhook_url or endpoint.email):
            raise LookupError("no endpoint")
        if endpoint.webhook_url:
            await _post(endpoint, raw.encode())
        else:
            from connectx.mail import service as mail

            assert endpoint.email is not None
            await mail.send(
                db,
                to=endpoint.email,
                subject=f"Data subject request: {notice.right} ({notice.subject})",
                body=await _mail_text(json.loads(raw)),
                kind="recipient_notice",
                subject_ref=notice_subject(notice.id),
            )
    except Exception as exc:
        notice.last_error = type(exc).__name__[:200]
        if last:
            notice.status = "failed"
            await _audit(db, notice, "privacy.recipient_notice_failed")
            return
        raise
    notice.status = "sent"
    notice.sent_at = clock.now()
    notice.last_error = None
    await _audit(db, notice, "privacy.recipient_notice_sent")


async def _post(endpoint: RecipientEndpoint, body: bytes) -> None:
    from connectx.outbound import graph

    assert endpoint.webhook_url is not None and endpoint.secret_enc is not None
    secret = await Vault().decrypt_bytes(
        None, endpoint_subject(endpoint.recipient_id), SECRET_COLUMN, endpoint.secret_enc
    )
    headers = {
        "Content-Type": "application/json",
        "X-ConnectX-Signature": signature(secret, body),
        "User-Agent": "ConnectX-Recipient-Notices/1",
    }
    async with graph.session().post(endpoint.webhook_url, data=body, headers=headers) as r:
        if r.status // 100 != 2:
            raise ConnectionError(f"recipient answered {r.status}")


async def _audit(db: AsyncSession, notice: RecipientNotice, action: str) -> None:
    await audit.record(
        db,
        actor="system",
        action=action,
        subject=notice.subject,
        workspace_id=notice.workspace_id,
        data={
            "notice_id": notice.id,
            "recipient": notice.recipient_id,
            "right": notice.right,
            "attempts": notice.attempts,
        },
    )


async def acknowledge(db: AsyncSession, token: str, *, ip: str | None = None) -> RecipientNotice:
    """A recipient confirms a notice (once): its body is cleared and its key destroyed."""
    notice = await repo.notice_by_ack(db, _ack_hash(token)) if token else None
    if notice is None or notice.acknowledged_at is not None:
        raise Gone("This acknowledgement link is unknown or was used already.")
    notice.status = "acknowledged"
    notice.acknowledged_at = clock.now()
    notice.body_enc = None
    await db.flush()
    await Vault(db).destroy_subject(None, notice_subject(notice.id), actor="system")
    await audit.record(
        db,
        actor=f"recipient:{notice.recipient_id}",
        action="privacy.recipient_acknowledged",
        subject=notice.subject,
        workspace_id=notice.workspace_id,
        ip=ip,
        data={"notice_id": notice.id, "recipient": notice.recipient_id, "right": notice.right},
    )
    return notice


async def set_endpoint(
    db: AsyncSession,
    recipient_id: str,
    *,
    webhook_url: str | None,
    secret: str | None,
    email: str | None,
    actor: str = "operator",
) -> RecipientEndpoint:
    """Configure where a registry recipient takes notices (the operator's CLI)."""
    from connectx.kit.errors import InvalidInput
    from connectx.privacy.processors import by_id

    try:
        by_id(recipient_id)
    except KeyError:
        raise InvalidInput(f"No recipient {recipient_id!r} in the registry.") from None
    if bool(webhook_url) == bool(email):
        raise InvalidInput("Give either a webhook URL (with its secret) or an e-mail address.")
    if webhook_url and not webhook_url.startswith(("https://", "http://")):
        raise InvalidInput("The webhook URL must start with https:// (or http:// for testing).")
    if webhook_url and (not secret or len(secret) < 16):
        raise InvalidInput("A webhook needs a shared secret of at least 16 characters.")
    if email and "@" not in email:
        raise InvalidInput("That is not an e-mail address.")
    row = await repo.recipient_endpoint(db, recipient_id)
    if row is None:
        row = RecipientEndpoint(recipient_id=recipient_id, updated_by=actor, updated_at=clock.now())
        await repo.add(db, row)
    row.webhook_url = webhook_url
    row.email = email
    row.secret_enc = (
        await Vault(db).encrypt(None, endpoint_subject(recipient_id), SECRET_COLUMN, secret)
        if webhook_url and secret
        else None
    )
    row.updated_by = actor
    row.updated_at = clock.now()
    await db.flush()
    await audit.record(
        db,
        actor=actor,
        action="privacy.recipient_endpoint_set",
        data={"recipient": recipient_id, "via": "webhook" if webhook_url else "email"},
    )
    return row
