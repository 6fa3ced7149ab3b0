"""Send e-mail: the message is stored encrypted under its subject's key and delivered by the
``mail.deliver`` task (SMTP when configured, otherwise kept in the local outbox)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.jobs.queue import enqueue
from connectx.kit import clock
from connectx.mail import repository as repo
from connectx.models.mail import MailMessage
from connectx.privacy.vault import Vault

# With the default backoff (10 s doubling, capped at 30 min) this keeps trying for about 2 hours.
DELIVERY_ATTEMPTS = 12


@dataclass
class OpenMail:
    id: int
    kind: str
    to: str
    subject: str
    body: str
    status: str


# Kinds of mail sent only with consent, each with an unsubscribe link (the kind is the purpose).
MARKETING_KINDS = ("marketing", "product_updates")


async def send(
    db: AsyncSession,
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    subject_ref: str,
    user_id: int | None = None,
    _consented: bool = False,
) -> MailMessage:
    """Queue a plain-text message. ``subject_ref`` names whose key encrypts it ("user:12",
    "invitation:3") so erasing that person erases their mail too. Marketing goes through
    :func:`send_marketing`."""
    if kind in MARKETING_KINDS and not _consented:
        raise ValueError("marketing mail goes through send_marketing (consent, unsubscribe link)")
    vault = Vault(db)
    message = MailMessage(
        subject=subject_ref,
        kind=kind,
        user_id=user_id,
        status="queued",
        attempts=0,
        created_at=clock.now(),
        to_enc=await vault.encrypt(None, subject_ref, "mail_messages.to", to),
        subject_line_enc=await vault.encrypt(None, subject_ref, "mail_messages.subject", subject),
        body_enc=await vault.encrypt(None, subject_ref, "mail_messages.body", body),
    )
    await repo.add(db, message)
    await audit.record(
        db,
        actor="system",
        action="mail.queued",
        subject=subject_ref,
        data={"mail_id": message.id, "kind": kind},
    )
    await enqueue(db, "mail.deliver", {"mail_id": message.id}, max_attempts=DELIVERY_ATTEMPTS)
    return message


async def send_marketing(
    db: AsyncSession, *, user_id: int, to: str, purpose: str, subject: str, body: str
) -> MailMessage | None:
    """Queue a marketing or product-update e-mail to an account holder, only with their consent
    in the ledger now (None when they have not consented: nothing is queued). The body gets the
    unsubscribe link; delivery adds the RFC 8058 headers (docs/consent.md)."""
    from connectx.privacy import consent, unsubscribe
    from connectx.privacy import purpose as purposes

    if purpose not in MARKETING_KINDS:
        raise ValueError(f"not a marketing purpose: {purpose!r}")
    with purposes.acting_for(purposes.Use.MARKETING):  # it could not open message content
        if not await consent.is_granted(db, f"user:{user_id}", purpose, "email"):
            return None
    link = await unsubscribe.link_for(user_id, purpose)
    what = unsubscribe.PURPOSES[purpose]
    footer = (
        f"\n\n--\nYou get this e-mail because you subscribed to {what} from ConnectX.\n"
        f"Unsubscribe with one click: {link}\n"
    )
    return await send(
        db,
        to=to,
        subject=subject,
        body=body.rstrip() + footer,
        kind=purpose,
        subject_ref=f"user:{user_id}",
        user_id=user_id,
        _consented=True,
    )


async def open_message(db: AsyncSession, message: MailMessage) -> OpenMail:
    vault = Vault(db)
    ref = message.subject
    return OpenMail(
        id=message.id,
        kind=message.kind,
        status=message.status,
        to=await vault.decrypt(None, ref, "mail_messages.to", message.to_enc),
        subject=await vault.decrypt(None, ref, "mail_messages.subject", message.subject_line_enc),
        body=await vault.decrypt(None, ref, "mail_messages.body", message.body_enc),
    )
