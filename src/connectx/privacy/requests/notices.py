"""Telling people about a request: the subject (by e-mail or WhatsApp) and the people who decide
(a workspace's owners and admins, or ConnectX's operators and DPO) by e-mail.

Mail about a request is sealed under the request's own key (``dsr:<id>``), so it outlives the
subject's erasure and is erased with the request. WhatsApp goes through the outbox in the
subject's most recent conversation, free-form while the 24-hour window is open; outside it the
notice goes by e-mail when the request has an address, and otherwise the timeline records that
it could not be delivered (the workspace sees it on the request).

A secret that is the subject's alone (their one-time download link, their withdrawal link, their
verification code) is sent to them on WhatsApp, but the message the conversation keeps, which
every agent of the workspace can read, says a placeholder in its place (``withheld``;
docs/privacy-requests.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.kit.errors import DomainError
from connectx.models.data_request import DataRequest
from connectx.privacy.requests import repository as repo
from connectx.privacy.requests import timeline

log = logging.getLogger(__name__)

KIND = "privacy_request"
# What the conversation shows instead of a link only the subject may have.
DOWNLOAD_WITHHELD = "[download link sent to the customer]"
WITHDRAW_WITHHELD = "[withdrawal link sent to the customer]"
CODE_WITHHELD = "[code sent to the customer]"


def contact_id_of(req: DataRequest) -> int | None:
    if req.subject and req.subject.startswith("contact:") and req.workspace_id is not None:
        return int(req.subject.split(":", 1)[1])
    return None


async def send_whatsapp(
    db: AsyncSession,
    workspace_id: int,
    contact_id: int,
    text: str,
    *,
    template: tuple[str, str, list[str]] | None = None,
    withheld: Mapping[str, str] | None = None,
) -> int | None:
    """Queue a WhatsApp message to a contact: free-form inside the 24-hour window, else the
    given approved template. Returns the queued message's id (recorded on the timeline, so a
    later failure can be told: :func:`on_failed`), or None when neither can be sent (no
    conversation, window closed and no template, number paused...). ``withheld``: secrets in
    ``text`` sent but not kept in the conversation, each with what it shows instead."""
    from connectx.conversations.service import window_open
    from connectx.outbound import service as outbound
    from connectx.outbound.schemas import SendIn, TemplateIn

    conversation = await repo.latest_conversation(db, workspace_id, contact_id)
    if conversation is None:
        return None
    if window_open(conversation):
        spec = SendIn(type="text", text=text)
    elif template is not None:
        name, language, body = template
        spec = SendIn(type="template", template=TemplateIn(name=name, language=language, body=body))
    else:
        return None
    principal = Principal(actor="system", workspace_id=workspace_id)
    try:
        async with db.begin_nested():
            sent, _ = await outbound.send_in_conversation(
                db, principal, conversation.id, spec, None, withheld=withheld
            )
    except DomainError as exc:
        log.info("privacy notice not sent on WhatsApp (%s)", type(exc).__name__)
        return None
    return sent.message.id


async def tell_subject(
    db: AsyncSession,
    req: DataRequest,
    title: str,
    body: str,
    step: str,
    *,
    whatsapp: bool = True,
    withheld: Mapping[str, str] | None = None,
) -> str:
    """Tell the subject about ``step`` of their request. Returns the channel used, or
    ``"undelivered"`` (recorded on the timeline). ``withheld``: links in ``body`` that are the
    subject's alone (see :func:`send_whatsapp`; e-mail goes to the subject only, as it is)."""
    from connectx.privacy.requests import fields

    contact_id = contact_id_of(req)
    if (
        whatsapp
        and req.notify_via == "whatsapp"
        and contact_id is not None
        and req.workspace_id is not None
        and (
            message_id := await send_whatsapp(
                db, req.workspace_id, contact_id, f"{title}\n\n{body}", withheld=withheld
            )
        )
    ):
        data = {"step": step, "via": "whatsapp", "message": message_id}
        await timeline.add(db, req, "notified", "system", data)
        return "whatsapp"
    email = await fields.read(db, req, "email")
    if email:
        from connectx.mail import service as mail

        await mail.send(
            db,
            to=email,
            subject=title,
            body=f"{body}\n\nYour reference: {req.reference}\n",
            kind=KIND,
            subject_ref=f"dsr:{req.id}",
        )
        await timeline.add(db, req, "notified", "system", {"step": step, "via": "email"})
        return "email"
    await timeline.add(db, req, "notice_undelivered", "system", {"step": step})
    return "undelivered"


async def tell_deciders(db: AsyncSession, req: DataRequest, title: str, body: str) -> int:
    """E-mail the people who decide: the workspace's owners and admins, or the operators and
    the DPO's address for requests to ConnectX itself. Returns how many were told."""
    from connectx.accounts import service as accounts
    from connectx.mail import service as mail

    if req.workspace_id is not None:
        user_ids = await repo.managers_of(db, req.workspace_id)
    else:
        user_ids = await repo.operators(db)
    told = 0
    for user_id in user_ids:
        user = await accounts.get_user(db, user_id)
        await mail.send(
            db,
            to=await accounts.email_of(db, user),
            subject=title,
            body=body,
            kind=KIND,
            subject_ref=f"user:{user_id}",
            user_id=user_id,
        )
        told += 1
    if req.workspace_id is None:
        from connectx.web.policy import privacy_policy

        dpo = privacy_policy().contact.email
        if dpo:
            await mail.send(
                db, to=dpo, subject=title, body=body, kind=KIND, subject_ref=f"dsr:{req.id}"
            )
            told += 1
    return told


# Timeline entries that name the WhatsApp message a notice went out as (``data["message"]``).
SENT_ACTIONS = ("notified", "code_sent")
GAVE_UP = "gave up"


async def on_failed(db: AsyncSession, failures: list[tuple[int, int | None, str | None]]) -> int:
    """Messages that failed for good ((message id, Meta's error code, its title); no code: the
    pacer gave up): when one was a request's notice, its timeline gets ``notice_failed`` (ids and
    Meta's code and title only) and the deciders are e-mailed to reach the person another way.
    Once per message. Called where a failure is recorded: status callbacks
    (messages.service) and the pacer. Returns how many notices were marked."""
    marked = 0
    for message_id, code, title in failures:
        found = await repo.notice_of_message(db, message_id, SENT_ACTIONS)
        if found is None:
            continue
        req, sent = found
        error = f"{code} {title or ''}".strip() if code is not None else (title or GAVE_UP)
        data = {
            "step": sent.data.get("step", "code" if sent.action == "code_sent" else None),
            "via": "whatsapp",
            "message": message_id,
            "error": error[:120],
        }
        await timeline.add(db, req, "notice_failed", "system", data)
        await tell_deciders(
            db,
            req,
            f"Privacy request {req.reference}: a WhatsApp notice was not delivered",
            f"The WhatsApp message telling the person about their request {req.reference} "
            f"({data['step']}) was not delivered (Meta: {error[:120]}). The 30-day clock runs "
            "on: reach them another way (e-mail, a call, or a template once they write again) "
            "and see the request's timeline.\n",
        )
        marked += 1
    return marked
