"""The life of a data-subject request: filed, verified, decided (approved and carried out, or
refused with reasons), with a 30-day clock and at most one extension.

Who decides: a workspace's owners and admins for its end customers (the workspace is the
controller, ConnectX its processor); ConnectX's operator and DPO for account holders and for
inquiries sent to the DPO. Every step is on the request's timeline and in the audit log, and the
subject is told of every step (docs/privacy-requests.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput
from connectx.models.data_request import DataRequest, DataRequestEvent
from connectx.privacy.requests import deadlines, fields, notices, timeline
from connectx.privacy.requests import repository as repo

KINDS = (
    "access",
    "rectification",
    "erasure",
    "restriction",
    "objection",
    "portability",
    "withdrawal",
)
INQUIRY = "inquiry"
KIND_WORDS = {
    "access": "a copy of your data",
    "rectification": "correcting your data",
    "erasure": "erasing your data",
    "restriction": "restricting the processing of your data",
    "objection": "objecting to the processing of your data",
    "portability": "your data in a portable format",
    "withdrawal": "withdrawing your consent",
    "inquiry": "a question to the Data Protection Officer",
}
ACCOUNT_HOLDER = "account_holder"
CUSTOMER = "customer"
OPEN = repo.OPEN
CLOSED = ("completed", "refused", "withdrawn", "lapsed")
MAX_DETAILS = 4000
COMPLAINT = (
    "If you disagree, you may complain to the data-protection supervisory authority where you "
    "live or work, for example the UAE Data Office, the Saudi Data & AI Authority (SDAIA), or "
    "your national authority in the EU/EEA."
)
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U


def check_kind(kind: str, *, inquiry: bool = False) -> str:
    kind = (kind or "").strip().lower()
    allowed = KINDS + ((INQUIRY,) if inquiry else ())
    if kind not in allowed:
        raise InvalidInput(f"Choose what you ask for: one of {', '.join(allowed)}.", field="kind")
    return kind


def check_details(details: str | None) -> str | None:
    text = (details or "").strip()
    if len(text) > MAX_DETAILS:
        raise InvalidInput(f"Keep the details under {MAX_DETAILS} characters.", field="details")
    return text or None


async def _reference(db: AsyncSession) -> str:
    while True:
        ref = "R-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))
        if not await repo.reference_taken(db, ref):
            return ref


@dataclass
class Filing:
    kind: str
    subject_kind: str  # account_holder | customer
    source: str  # web, whatsapp, api, account, dpo_form
    filed_by: str  # actor id
    workspace_id: int | None = None
    subject: str | None = None  # "contact:5" / "user:12" when known
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    details: str | None = None
    params: dict[str, Any] | None = None
    notify_via: str = "email"


async def file(
    db: AsyncSession,
    filing: Filing,
    *,
    verified_by: str | None = None,
    ip: str | None = None,
) -> DataRequest:
    """Record a request as received now (the clock starts). ``verified_by`` names how the
    subject is already known to be who they say (a signed-in account, the WhatsApp number
    itself, a workspace's attestation); otherwise the request waits for a one-time code."""
    now = clock.now()
    req = DataRequest(
        workspace_id=filing.workspace_id,
        reference=await _reference(db),
        kind=filing.kind,
        subject_kind=filing.subject_kind,
        subject=filing.subject,
        status="unverified",
        source=filing.source,
        filed_by=filing.filed_by,
        notify_via=filing.notify_via,
        received_at=now,
        due_at=deadlines.due_for(now),
        code_attempts=0,
        codes_sent=0,
        created_at=now,
        updated_at=now,
    )
    await repo.add(db, req)
    await fields.write(db, req, "email", filing.email)
    await fields.write(db, req, "phone", filing.phone)
    await fields.write(db, req, "name", filing.name)
    await fields.write(db, req, "details", check_details(filing.details))
    await fields.write_json(db, req, "params", filing.params or None)
    await timeline.add(
        db,
        req,
        "filed",
        filing.filed_by,
        {"source": filing.source, "matched": req.subject is not None},
        ip=ip,
    )
    if verified_by is not None:
        await mark_verified(db, req, verified_by, actor=filing.filed_by)
    return req


async def mark_verified(db: AsyncSession, req: DataRequest, method: str, *, actor: str) -> None:
    """The subject proved who they are: the request now waits for a decision."""
    if req.status != "unverified":
        return
    now = clock.now()
    req.status = "pending"
    req.verified_at = now
    req.verification = method
    req.code_hash = None
    req.code_expires_at = None
    req.updated_at = now
    await timeline.add(db, req, "verified", actor, {"method": method})
    who = _decider_words(req)
    link = await withdraw_link(req)
    await notices.tell_subject(
        db,
        req,
        f"We received your privacy request {req.reference}",
        f"We received your request for {KIND_WORDS[req.kind]} on "
        f"{req.received_at:%d %B %Y}. {who} will answer it by {req.due_at:%d %B %Y}. "
        "We will tell you of every step.\n\nChanged your mind? Until it is carried out you can "
        f"withdraw it here: {link}"
        + (
            f" (or reply CANCEL {req.reference} in this chat)"
            if req.notify_via == "whatsapp"
            else ""
        ),
        "verified",
        withheld={link: notices.WITHDRAW_WITHHELD},
    )
    await notices.tell_deciders(
        db,
        req,
        f"New privacy request {req.reference} ({req.kind}), due {req.due_at:%Y-%m-%d}",
        f"A verified {req.kind} request ({req.reference}) was received on "
        f"{req.received_at:%Y-%m-%d} and must be answered by {req.due_at:%Y-%m-%d}.\n\n"
        "Open it: " + decider_link(req) + "\n",
    )


def _decider_words(req: DataRequest) -> str:
    return "The business you asked" if req.workspace_id is not None else "ConnectX"


def decider_link(req: DataRequest) -> str:
    from connectx.config import get_settings

    base = get_settings().effective_public_url
    if req.workspace_id is not None:
        return f"{base}/workspace/requests/{req.id}"
    return f"{base}/operator/requests/{req.id}"


def _check_open(req: DataRequest) -> None:
    if req.status not in OPEN:
        raise Conflict(f"Request {req.reference} is {req.status} already; nothing more to decide.")


# Rights whose execution can take a while run as a job (docs/privacy-rights.md).
IN_BACKGROUND = ("access", "portability", "erasure")


async def approve(
    db: AsyncSession, req: DataRequest, *, actor: str, ip: str | None = None
) -> DataRequest:
    """Carry out a verified request (now, or as a job for access, portability and erasure)
    and close it; the subject is told the outcome."""
    from connectx.jobs.queue import enqueue

    _check_open(req)
    if req.status == "unverified":
        raise Conflict(
            f"Request {req.reference} is not verified yet: nothing is disclosed or changed "
            "before the person proves who they are."
        )
    if req.status == "in_progress":
        raise Conflict(f"Request {req.reference} is approved already and being carried out.")
    if req.kind == INQUIRY:
        raise Conflict("An inquiry is answered, not approved: reply to it and close it.")
    req.decided_at = clock.now()
    req.decided_by = actor
    await timeline.add(db, req, "approved", actor, ip=ip)
    if req.kind in IN_BACKGROUND:
        req.status = "in_progress"
        req.updated_at = clock.now()
        last = (
            " This is our last message here: once your data is erased we can no longer write "
            "to you."
            if req.kind == "erasure" and req.notify_via == "whatsapp"
            else " We will tell you when it is done."
        )
        await notices.tell_subject(
            db,
            req,
            f"Your privacy request {req.reference} is approved",
            f"Your request for {KIND_WORDS[req.kind]} is approved and being carried out now.{last}",
            "approved",
        )
        await enqueue(db, "privacy.execute_request", {"request_id": req.id}, max_attempts=5)
        return req
    await carry_out(db, req, actor=actor, ip=ip)
    return req


async def carry_out(
    db: AsyncSession, req: DataRequest, *, actor: str, ip: str | None = None
) -> None:
    """Run the right's executor, record the result, close the request and tell the subject.
    After an erasure the subject can no longer be reached on WhatsApp (their number is gone):
    they were told at approval; e-mail is used when the request has an address."""
    from connectx.privacy.requests import execution

    outcome = await execution.run(db, req, actor=actor, ip=ip)
    req.artifact_id = outcome.artifact_id
    await fields.write_json(db, req, "result", outcome.result)
    await _close(db, req, "completed", actor, {"outcome": outcome.code})
    await notices.tell_subject(
        db,
        req,
        f"Your privacy request {req.reference} is done",
        outcome.message(req),
        "completed",
        whatsapp=req.kind != "erasure",
        withheld={outcome.link: notices.DOWNLOAD_WITHHELD} if outcome.link else None,
    )


async def refuse(
    db: AsyncSession, req: DataRequest, *, actor: str, reason: str, ip: str | None = None
) -> DataRequest:
    """Refuse with reasons; the subject is told them and how to complain."""
    _check_open(req)
    reason = (reason or "").strip()
    if len(reason) < deadlines.MIN_REASON:
        raise InvalidInput(
            "Give the reasons for refusing (at least a short sentence): the person is told them.",
            field="reason",
        )
    if len(reason) > MAX_DETAILS:
        raise InvalidInput(f"Keep the reasons under {MAX_DETAILS} characters.", field="reason")
    req.decided_at = clock.now()
    req.decided_by = actor
    await fields.write(db, req, "refusal_reason", reason)
    await _close(db, req, "refused", actor, ip=ip)
    await notices.tell_subject(
        db,
        req,
        f"Your privacy request {req.reference} was refused",
        f"{_decider_words(req)} refused your request for {KIND_WORDS[req.kind]}, for these "
        f"reasons:\n\n{reason}\n\n{COMPLAINT}",
        "refused",
    )
    return req


async def extend(
    db: AsyncSession,
    req: DataRequest,
    *,
    actor: str,
    days: int,
    reason: str,
    ip: str | None = None,
) -> DataRequest:
    """Push the due date back once, by up to 30 days, before it passes, with a reason the
    subject is told."""
    _check_open(req)
    if req.status == "unverified":
        raise Conflict(
            "This request is not verified yet: it lapses unless the person proves who they are, "
            "so there is nothing to extend."
        )
    now = clock.now()
    deadlines.check_extension(
        due_at=req.due_at, now=now, already=req.extended_at is not None, days=days, reason=reason
    )
    from datetime import timedelta

    req.due_at = req.due_at + timedelta(days=days)
    req.extended_at = now
    req.extension_days = days
    req.updated_at = now
    await fields.write(db, req, "extension_reason", reason.strip())
    await timeline.add(db, req, "extended", actor, {"days": days}, ip=ip)
    await notices.tell_subject(
        db,
        req,
        f"We need more time for your privacy request {req.reference}",
        f"{_decider_words(req)} extended the time to answer your request for "
        f"{KIND_WORDS[req.kind]} by {days} days, to {req.due_at:%d %B %Y}, for this reason:\n\n"
        f"{reason.strip()}",
        "extended",
    )
    return req


WITHDRAWABLE = ("unverified", "pending")
WITHDRAW_PATH = "/privacy-center/withdraw"


async def withdraw_token(req: DataRequest) -> str:
    """The secret in the subject's withdrawal link (a keyed hash of the request: nothing is
    stored, and nobody can make one without the key store)."""
    from connectx.privacy.vault import Vault

    return (await Vault().blind_index("dsr_withdraw", f"{req.id}|{req.reference}")).hex()


async def withdraw_link(req: DataRequest) -> str:
    from urllib.parse import urlencode

    from connectx.config import get_settings

    query = urlencode({"ref": req.reference, "token": await withdraw_token(req)})
    return f"{get_settings().effective_public_url}{WITHDRAW_PATH}?{query}"


async def check_withdraw_token(req: DataRequest | None, token: str) -> bool:
    import hmac

    if req is None or not token:
        return False
    return hmac.compare_digest(await withdraw_token(req), token.strip().lower())


async def withdraw(
    db: AsyncSession, req: DataRequest, *, actor: str, via: str, ip: str | None = None
) -> DataRequest:
    """The subject withdraws their own request before it is carried out (through their
    withdrawal link, their account settings or their WhatsApp chat): closed as ``withdrawn``,
    nothing done; the deciders and the subject are told."""
    if req.status not in WITHDRAWABLE or not await repo.claim_status(
        db, req.id, WITHDRAWABLE, "withdrawn", clock.now()
    ):
        await db.refresh(req)
        raise Conflict(
            f"Request {req.reference} is {req.status.replace('_', ' ')}: it is being carried "
            "out or is closed already, so it can no longer be withdrawn."
        )
    await db.refresh(req)
    await _close(db, req, "withdrawn", actor, {"via": via}, ip=ip)
    await notices.tell_subject(
        db,
        req,
        f"Your privacy request {req.reference} is withdrawn",
        f"As you asked, your request for {KIND_WORDS[req.kind]} is withdrawn: nothing was done "
        "with it. You may file a new one at any time.",
        "withdrawn",
    )
    await notices.tell_deciders(
        db,
        req,
        f"Privacy request {req.reference} withdrawn",
        f"The person withdrew their {req.kind} request ({req.reference}); nothing is left to "
        "decide.\n\n" + decider_link(req) + "\n",
    )
    return req


async def close_inquiry(
    db: AsyncSession, req: DataRequest, *, actor: str, answer: str, ip: str | None = None
) -> DataRequest:
    """The DPO answered an inquiry: the answer goes to the person, the inquiry is closed."""
    _check_open(req)
    if req.kind != INQUIRY:
        raise Conflict("Only an inquiry is answered this way; approve or refuse a request.")
    answer = (answer or "").strip()
    if not answer:
        raise InvalidInput("Write the answer to send.", field="answer")
    req.decided_at = clock.now()
    req.decided_by = actor
    await fields.write_json(db, req, "result", {"answer": answer})
    await _close(db, req, "completed", actor, ip=ip)
    await notices.tell_subject(
        db, req, f"Answer to your inquiry {req.reference}", answer, "answered"
    )
    return req


async def _close(
    db: AsyncSession,
    req: DataRequest,
    status: str,
    actor: str,
    data: dict[str, Any] | None = None,
    *,
    ip: str | None = None,
) -> None:
    now = clock.now()
    req.status = status
    req.closed_at = now
    req.updated_at = now
    req.code_hash = None
    await timeline.add(db, req, status, actor, data, ip=ip)


async def lapse_unverified(db: AsyncSession) -> int:
    """Close requests nobody verified within the lapse period (the person never proved who
    they are; nothing was disclosed or changed)."""
    before = clock.now() - deadlines.UNVERIFIED_LAPSE
    count = 0
    for request_id in await repo.unverified_before(db, before):
        req = await repo.any_request(db, request_id)
        if req is not None and req.status == "unverified":
            await _close(db, req, "lapsed", "system")
            count += 1
    return count


# -- reading -------------------------------------------------------------------------------------


@dataclass
class RequestView:
    id: int
    reference: str
    kind: str
    kind_words: str
    subject_kind: str
    subject: str | None
    status: str
    source: str
    workspace_id: int | None
    received_at: datetime
    clock: deadlines.Clock
    verified_at: datetime | None
    verification: str | None
    closed_at: datetime | None
    decided_by: str | None
    extension_days: int | None
    artifact_id: int | None
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    details: str | None = None
    params: dict[str, Any] | None = None
    extension_reason: str | None = None
    refusal_reason: str | None = None
    result: dict[str, Any] | None = None
    events: list[DataRequestEvent] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in OPEN


def mask(value: str | None) -> str | None:
    """ "+9715•••4567", "a•••@example.com": enough to recognise, not to copy."""
    if not value:
        return None
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    return f"{value[:5]}•••{value[-4:]}" if len(value) > 9 else "•••" + value[-2:]


def summary(req: DataRequest) -> RequestView:
    return RequestView(
        id=req.id,
        reference=req.reference,
        kind=req.kind,
        kind_words=KIND_WORDS.get(req.kind, req.kind),
        subject_kind=req.subject_kind,
        subject=req.subject,
        status=req.status,
        source=req.source,
        workspace_id=req.workspace_id,
        received_at=req.received_at,
        clock=deadlines.clock_of(req.due_at, clock.now(), req.extended_at is not None),
        verified_at=req.verified_at,
        verification=req.verification,
        closed_at=req.closed_at,
        decided_by=req.decided_by,
        extension_days=req.extension_days,
        artifact_id=req.artifact_id,
    )


async def detail(db: AsyncSession, req: DataRequest) -> RequestView:
    view = summary(req)
    view.email = mask(await fields.read(db, req, "email"))
    view.phone = mask(await fields.read(db, req, "phone"))
    view.name = await fields.read(db, req, "name")
    view.details = await fields.read(db, req, "details")
    view.params = await fields.read_json(db, req, "params")
    view.extension_reason = await fields.read(db, req, "extension_reason")
    view.refusal_reason = await fields.read(db, req, "refusal_reason")
    view.result = await fields.read_json(db, req, "result")
    view.events = await repo.events_of(db, req.id)
    return view


async def list_for_contact(
    db: AsyncSession, workspace_id: int, contact_id: int
) -> list[RequestView]:
    """A contact's requests in one workspace, newest first (for the inbox's contact panel)."""
    rows = await repo.list_in_workspace(db, workspace_id, subject=f"contact:{contact_id}")
    return [summary(r) for r in rows]


async def list_for_user(db: AsyncSession, user_id: int) -> list[RequestView]:
    """An account holder's own requests to ConnectX, newest first."""
    return [summary(r) for r in await repo.list_platform(db, subject=f"user:{user_id}")]


async def record_view(
    db: AsyncSession, req: DataRequest, *, actor: str, ip: str | None = None
) -> None:
    """One audit entry for reading a request's details (what the person wrote, the result)."""
    from connectx.audit import service as audit

    await audit.record(
        db,
        actor=actor,
        action="privacy_request.viewed",
        subject=req.subject or f"dsr:{req.id}",
        workspace_id=req.workspace_id,
        ip=ip,
        data={"request": req.id},
    )
