"""Proving who asks: a one-time code sent to the WhatsApp number or e-mail address on file.

A code lives 10 minutes and allows 3 attempts; only a keyed hash of it is stored, compared in
constant time. At most 5 codes per request, one a minute. A request whose address matched nobody
behaves exactly the same to the person filing it (nobody learns who is a customer), but no code
is sent and it lapses unverified.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.kit.errors import Conflict, TooManyRequests
from connectx.models.data_request import DataRequest
from connectx.privacy.requests import notices, timeline
from connectx.privacy.requests import repository as repo
from connectx.privacy.vault import Vault

CODE_LIFE = timedelta(minutes=10)
MAX_ATTEMPTS = 3
MAX_CODES = 5
RESEND_AFTER = timedelta(seconds=60)


async def _hash(req: DataRequest, code: str) -> bytes:
    return await Vault().blind_index("dsr_code", f"{req.id}|{code}")


async def _deliver(db: AsyncSession, req: DataRequest, code: str) -> tuple[str, int | None] | None:
    """Send ``code`` to the address on file; the channel used (and the WhatsApp message's id),
    or None."""
    text = (
        f"Your ConnectX verification code is {code}. It works for 10 minutes. "
        f"It confirms your privacy request {req.reference}; if you did not ask, ignore this."
    )
    if req.subject and req.subject.startswith("user:"):
        from connectx.accounts import service as accounts
        from connectx.mail import service as mail

        user = await accounts.get_user(db, int(req.subject.split(":", 1)[1]))
        await mail.send(
            db,
            to=await accounts.email_of(db, user),
            subject=f"Your verification code for privacy request {req.reference}",
            body=text + "\n",
            kind="privacy_request_code",
            subject_ref=f"dsr:{req.id}",
        )
        return "email", None
    contact_id = notices.contact_id_of(req)
    if contact_id is not None and req.workspace_id is not None:
        settings = await repo.settings_of(db, req.workspace_id)
        template = None
        if settings is not None and settings.code_template:
            template = (settings.code_template, settings.code_template_language or "en_US", [code])
        withheld = {code: notices.CODE_WITHHELD}  # anyone holding it could verify the request
        message_id = await notices.send_whatsapp(
            db, req.workspace_id, contact_id, text, template=template, withheld=withheld
        )
        if message_id is not None:
            return "whatsapp", message_id
    return None


@dataclass
class Sent:
    delivered: bool  # False: the address on file cannot be reached now (said to the person)


async def send_code(db: AsyncSession, req: DataRequest) -> Sent:
    """Issue a fresh code (replacing any earlier one) and send it to the address on file."""
    if req.status != "unverified":
        raise Conflict(f"Request {req.reference} needs no code: it is {req.status}.")
    now = clock.now()
    if req.codes_sent >= MAX_CODES:
        raise TooManyRequests(
            "Too many codes were sent for this request; file a new request.", 3600
        )
    if req.code_sent_at is not None and now - req.code_sent_at < RESEND_AFTER:
        wait = int((RESEND_AFTER - (now - req.code_sent_at)).total_seconds()) + 1
        raise TooManyRequests("A code was sent a moment ago; wait before asking again.", wait)
    code = f"{secrets.randbelow(10**6):06d}"
    req.code_hash = await _hash(req, code)
    req.code_expires_at = now + CODE_LIFE
    req.code_attempts = 0
    req.codes_sent += 1
    req.code_sent_at = now
    req.updated_at = now
    sent = await _deliver(db, req, code) if req.subject else None
    via = sent[0] if sent else None
    data: dict[str, object] = {"via": via or "none"}
    if sent and sent[1] is not None:
        data["message"] = sent[1]
    await timeline.add(db, req, "code_sent", "system", data)
    return Sent(delivered=via is not None or req.subject is None)


@dataclass
class Check:
    ok: bool
    problem: str | None = None  # wrong, expired, used_up, closed
    attempts_left: int = 0

    @property
    def message(self) -> str:
        return {
            "wrong": f"That code is not right. {self.attempts_left} attempt"
            f"{'s' if self.attempts_left != 1 else ''} left.",
            "expired": "That code has expired (codes work for 10 minutes). Ask for a new one.",
            "used_up": "That code was tried 3 times and no longer works. Ask for a new one.",
            "closed": "This request is no longer waiting for a code.",
            None: "",
        }[self.problem]


async def check_code(db: AsyncSession, req: DataRequest, code: str, *, actor: str) -> Check:
    """Compare ``code`` (constant time). A failed attempt is counted and must be committed by
    the caller, so this returns a result instead of raising."""
    if req.status != "unverified":
        return Check(ok=False, problem="closed")
    now = clock.now()
    if req.code_hash is None:
        return Check(ok=False, problem="used_up" if req.codes_sent else "expired")
    if req.code_expires_at is None or now >= req.code_expires_at:
        req.code_hash = None
        return Check(ok=False, problem="expired")
    given = "".join(ch for ch in (code or "") if ch.isdigit())[:12]
    req.code_attempts += 1
    req.updated_at = now
    if hmac.compare_digest(await _hash(req, given), req.code_hash):
        method = "code_email" if (req.subject or "").startswith("user:") else "code_whatsapp"
        from connectx.privacy.requests import service

        await service.mark_verified(db, req, method, actor=actor)
        return Check(ok=True)
    left = MAX_ATTEMPTS - req.code_attempts
    await timeline.add(db, req, "code_rejected", actor, {"attempts_left": max(0, left)})
    if left <= 0:
        req.code_hash = None
        return Check(ok=False, problem="used_up")
    return Check(ok=False, problem="wrong", attempts_left=left)
