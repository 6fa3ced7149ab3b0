"""Sending: check, build, and queue a message as a durable outbox row committed with it.

Nothing here talks to Meta except the media upload (media is uploaded to Meta first; we never
hand out links to our storage). The pacer (``outbound/pacer.py``) sends the rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.channels import repository as channels_repo
from connectx.channels import service as channels
from connectx.contacts import repository as contacts_repo
from connectx.contacts.service import Contacts
from connectx.conversations import repository as conversations_repo
from connectx.conversations.service import Conversations, window_open
from connectx.db.session import after_commit
from connectx.integrations.whatsapp.schemas import Identity
from connectx.kit import clock
from connectx.kit.errors import Conflict, InvalidInput, NotFound
from connectx.kit.phones import to_e164
from connectx.messages import service as messages
from connectx.models.channel import Channel
from connectx.models.consent import ConsentRecord
from connectx.models.contact import Contact
from connectx.models.conversation import Conversation
from connectx.models.message import Message
from connectx.models.outbox import ChannelSending, OutboxMessage
from connectx.outbound import graph, payloads, wakeup
from connectx.outbound import repository as repo
from connectx.outbound.schemas import DirectSendIn, SendIn
from connectx.privacy import consent, purpose
from connectx.privacy.rights import restriction
from connectx.privacy.vault import Vault
from connectx.realtime import publish as realtime
from connectx.security import suspension

PAYLOAD = "outbox_messages.payload"
purpose.register(
    "marketing.send_gate",
    purpose.Use.MARKETING,
    list(ConsentRecord.__table__.columns),
    "connectx.outbound.service",
)
DEFAULT_RATE = 80
MAX_RATE = 1000
MEDIA_LIMITS = {
    "image": 5 * 2**20,
    "audio": 16 * 2**20,
    "video": 16 * 2**20,
    "document": 100 * 2**20,
    "sticker": 500 * 2**10,
}


@dataclass
class Sent:
    message: Message
    outbox: OutboxMessage


# What the conversation shows in a withheld secret's place: "[<what> sent to the customer]"
# (withhold refuses any other form), so the stored text itself tells that the message held a
# secret it no longer has: such a failed message is not sent again (docs/privacy-requests.md).
PLACEHOLDER = re.compile(r"\[[a-z][a-z -]{0,60} sent to the customer\]")


def holds_withheld(text: str | None) -> bool:
    """Whether a stored text had a secret withheld (it shows a :data:`PLACEHOLDER`)."""
    return text is not None and PLACEHOLDER.search(text) is not None


def withhold(value: Any, withheld: Mapping[str, str] | None) -> Any:
    """``value`` (a text, or JSON content: its strings) as we keep it: each secret of
    ``withheld`` (a one-time link or code that is the customer's alone) replaced by what the
    conversation shows instead, which must match :data:`PLACEHOLDER`."""
    for shown in (withheld or {}).values():
        if not PLACEHOLDER.fullmatch(shown):
            raise ValueError(f"{shown!r} does not say '[… sent to the customer]'")
    if isinstance(value, str):
        for secret, shown in (withheld or {}).items():
            value = value.replace(secret, shown)
        return value
    if isinstance(value, dict):
        return {k: withhold(v, withheld) for k, v in value.items()}
    if isinstance(value, list):
        return [withhold(v, withheld) for v in value]
    return value


def recipient_key(workspace_id: int, contact_id: int) -> str:
    return hashlib.sha256(f"{workspace_id}|{contact_id}".encode()).hexdigest()[:32]


async def _marketing_allowed(db: AsyncSession, contact_id: int) -> bool:
    """The marketing send gate: active consent in the ledger now (a marketing read path, so it
    runs for :attr:`purpose.Use.MARKETING`: it could not open message content)."""
    with purpose.acting_for(purpose.Use.MARKETING):
        return await consent.is_granted(db, f"contact:{contact_id}", "marketing", "whatsapp")


async def _recipient(db: AsyncSession, contact: Contact) -> dict[str, str]:
    vault = Vault(db)
    subject = f"contact:{contact.id}"
    phone = await vault.decrypt_or_none(
        contact.workspace_id, subject, "contacts.phone", contact.phone_enc
    )
    if phone:
        return {"to": phone}
    bsuid = await vault.decrypt_or_none(
        contact.workspace_id, subject, "contacts.bsuid", contact.bsuid_enc
    )
    if bsuid:
        return {"recipient": bsuid}
    raise InvalidInput("This contact has no WhatsApp number or user id to send to.")


async def _check_channel(db: AsyncSession, channel: Channel) -> str:
    if channel.disconnected_at is not None:
        raise Conflict("This number is disconnected; connect it again to send from it.")
    state = await repo.sending_state(db, channel.id)
    if state is not None and state.paused_at is not None:
        raise Conflict(
            "Sending from this number is paused: Meta refused its access token (error 190). "
            "Reconnect the number with a valid token, then resume sending."
            if state.pause_reason == "token_invalid"
            else f"Sending from this number is paused ({state.pause_reason})."
        )
    token = await channels.access_token(db, channel)
    if not token:
        raise Conflict("This number has no access token; reconnect it.")
    return token


async def _approved_names(db: AsyncSession, channel: Channel) -> list[str]:
    rows = await repo.templates(db, channel.workspace_id, channel.waba_id, "APPROVED")
    return sorted({t.name for t in rows})


async def _upload(channel: Channel, token: str, spec_media: Any, kind: str) -> str:
    if spec_media.id:
        return str(spec_media.id)
    if not spec_media.data_b64:
        raise InvalidInput("Give media.id or media.data_b64 (links are not sent).", field="media")
    try:
        data = base64.b64decode(spec_media.data_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("media.data_b64 is not valid base64.", field="media") from exc
    limit = MEDIA_LIMITS.get(kind, MEDIA_LIMITS["document"])
    if not data or len(data) > limit:
        raise InvalidInput(f"A {kind} may be 1 byte to {limit // 1024} KB.", field="media")
    if not spec_media.mime_type:
        raise InvalidInput("media.mime_type is required with data_b64.", field="media")
    try:
        return await graph.upload_media(
            channel.phone_number_id,
            token,
            data,
            spec_media.mime_type,
            spec_media.filename or f"upload.{kind}",
        )
    except graph.GraphError as exc:
        raise InvalidInput(f"Meta refused the upload: {exc.title} ({exc.code}).") from exc


async def _queue(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    contact: Contact,
    conversation: Conversation,
    spec: SendIn,
    idempotency_key: str | None,
    withheld: Mapping[str, str] | None = None,
) -> Sent:
    ws = channel.workspace_id
    await suspension.ensure_can_send(db, ws)
    await restriction.ensure_can_process(db, contact)
    token = await _check_channel(db, channel)
    tpl = None
    if spec.type == "template":
        if spec.template is None:
            raise InvalidInput("A template message needs 'template'.", field="template")
        tpl = await repo.template(
            db, ws, channel.waba_id, spec.template.name, spec.template.language
        )
        if tpl is None:
            raise InvalidInput(
                f"No template {spec.template.name!r} ({spec.template.language}) is known for "
                "this number; sync the templates or check the name.",
                field="template",
            )
        if tpl.status != "APPROVED":
            detail = f": {tpl.reason}" if tpl.reason else ""
            raise InvalidInput(
                f"Template {tpl.name!r} is {tpl.status.lower()}{detail}; only approved templates "
                "can be sent.",
                field="template",
            )
        if tpl.category == "MARKETING" and not await _marketing_allowed(db, contact.id):
            raise InvalidInput(
                "This contact has not agreed to marketing messages on WhatsApp (or withdrew); "
                "marketing templates are not sent to them.",
                field="template",
            )
    elif not window_open(conversation):
        names = await _approved_names(db, channel)
        offer = f" Approved templates: {', '.join(names)}." if names else ""
        raise InvalidInput(
            "The 24-hour customer-service window is closed (the customer has not written in "
            "the last 24 hours): only an approved template can be sent." + offer,
            field="type",
        )
    media_id = None
    if spec.type in payloads.MEDIA_KINDS:
        if spec.media is None:
            raise InvalidInput(f"A {spec.type} message needs media.", field="media")
        payloads.build(spec.model_copy(update={"media": spec.media}), media_id="check")
        media_id = await _upload(channel, token, spec.media, spec.type)
    elif spec.type == "template" and spec.template and spec.template.header_media:
        assert tpl is not None
        payloads.template(spec.template, tpl, "check")
        header = next(c for c in tpl.components if str(c.get("type")).upper() == "HEADER")
        media_id = await _upload(
            channel, token, spec.template.header_media, str(header.get("format")).lower()
        )
    built = payloads.build(spec, media_id=media_id, tpl=tpl)
    now = clock.now()
    callback = secrets.token_hex(16)
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **await _recipient(db, contact),
        **built.graph,
        "biz_opaque_callback_data": callback,
    }
    # The outbox row has the real text until Meta has it (then its payload is cleared); the
    # message the conversation keeps has every withheld secret replaced.
    kept = withhold(built.body, withheld) if built.body else None
    content = json.dumps(withhold(built.content, withheld)) if built.content else None
    vault = Vault(db)
    subject = messages.subject_of(contact.id)
    message = Message(
        workspace_id=ws,
        channel_id=channel.id,
        conversation_id=conversation.id,
        contact_id=contact.id,
        phone_number_id=channel.phone_number_id,
        wamid=f"cx:{callback}",
        direction="out",
        type=built.type,
        status="queued",
        status_rank=0,
        reply_to_wamid=built.reply_to,
        target_wamid=built.target_wamid,
        media_id=media_id if spec.type in payloads.MEDIA_KINDS else None,
        media_mime_type=spec.media.mime_type if spec.media else None,
        sent_at=now,
        created_at=now,
        body_enc=await vault.encrypt(ws, subject, messages.BODY, kept) if kept else None,
        content_enc=(
            await vault.encrypt(ws, subject, messages.CONTENT, content) if content else None
        ),
    )
    outbox = OutboxMessage(
        workspace_id=ws,
        channel_id=channel.id,
        contact_id=contact.id,
        kind="message",
        recipient_key=recipient_key(ws, contact.id),
        idempotency_key=idempotency_key,
        callback_data=callback,
        payload_enc=await vault.encrypt(ws, subject, PAYLOAD, json.dumps(body)),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_by=principal.actor,
        created_at=now,
        updated_at=now,
    )
    try:
        async with db.begin_nested():
            await repo.add(db, message)
            outbox.message_id = message.id
            await repo.add(db, outbox)
    except IntegrityError:
        if idempotency_key:
            again = await _repeat(db, ws, idempotency_key)
            if again is not None:
                return again
        raise
    if conversation.last_message_at is None or now > conversation.last_message_at:
        conversation.last_message_at = now
    await audit.record(
        db,
        actor=principal.actor,
        action="messages.sent",
        subject=subject,
        workspace_id=ws,
        ip=principal.ip,
        data={"message": message.id, "conversation": conversation.id, "type": built.type},
    )
    after_commit(db, wakeup.notify_async)
    realtime.after_commit(
        db,
        ws,
        "message.new",
        message_id=message.id,
        conversation_id=conversation.id,
        direction="out",
    )
    return Sent(message, outbox)


async def _repeat(db: AsyncSession, workspace_id: int, key: str) -> Sent | None:
    outbox = await repo.by_idempotency_key(db, workspace_id, key)
    if outbox is None or outbox.message_id is None:
        return None
    message = await repo.message(db, workspace_id, outbox.message_id)
    assert message is not None
    return Sent(message, outbox)


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 200:
        raise InvalidInput("Idempotency-Key must be 1 to 200 characters.", field="Idempotency-Key")
    return key


async def send_in_conversation(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    spec: SendIn,
    idempotency_key: str | None,
    *,
    withheld: Mapping[str, str] | None = None,
) -> tuple[Sent, bool]:
    """Queue ``spec`` in a conversation. Returns (sent, repeated): a repeated idempotency key
    returns the first send and queues nothing. ``withheld``: secrets in the text that only the
    customer may have, each with what the stored message says in its place (:func:`withhold`)."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    key = _check_key(idempotency_key)
    if key and (again := await _repeat(db, ws, key)) is not None:
        return again, True
    conversation = await conversations_repo.get(db, ws, conversation_id)
    channel = await channels_repo.get(db, ws, conversation.channel_id)
    contact = await contacts_repo.get(db, ws, conversation.contact_id)
    sent = await _queue(db, principal, channel, contact, conversation, spec, key, withheld)
    return sent, False


async def send_direct(
    db: AsyncSession, principal: Principal, spec: DirectSendIn, idempotency_key: str | None
) -> tuple[Sent, bool]:
    """Queue ``spec`` to a contact or phone number from one of the workspace's numbers."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    key = _check_key(idempotency_key)
    if key and (again := await _repeat(db, ws, key)) is not None:
        return again, True
    channel = await channels_repo.get(db, ws, spec.channel_id)
    if spec.contact_id is not None:
        contact = await contacts_repo.get(db, ws, spec.contact_id)
    elif spec.to:
        try:
            phone = to_e164(spec.to)
        except Exception as exc:
            raise InvalidInput(
                "'to' is not a valid phone number (E.164, e.g. +14155550123).", field="to"
            ) from exc
        from connectx.intake.dispatch import lock_people, person_keys

        identity = Identity(phone=phone)
        await lock_people(db, set(person_keys(ws, identity)))
        found = await Contacts(db, principal.actor).resolve(ws, identity)  # suppression checked
        if found is None:
            raise InvalidInput("'to' is not a valid phone number.", field="to")
        contact = found
    else:
        raise InvalidInput("Give contact_id or to.", field="to")
    conversation = await Conversations(db).open_for(ws, channel.id, contact.id, clock.now())
    sent = await _queue(db, principal, channel, contact, conversation, spec, key)
    return sent, False


async def queue_text(
    db: AsyncSession,
    principal: Principal,
    channel: Channel,
    contact: Contact,
    conversation: Conversation,
    text: str,
) -> Sent:
    """Queue a plain text in ``conversation`` on the platform's behalf (a keyword's
    confirmation), with every check any send has: suspension, the number's state, the window."""
    spec = SendIn(type="text", text=text)
    return await _queue(db, principal, channel, contact, conversation, spec, None)


async def mark_read(
    db: AsyncSession, principal: Principal, message_id: int, typing: bool
) -> OutboxMessage:
    """Queue a read receipt (and optionally the typing indicator) for an inbound message."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    message = await repo.message(db, ws, message_id)
    if message is None:
        raise NotFound("No such message in this workspace.")
    if message.direction != "in":
        raise InvalidInput("Only messages the customer sent can be marked read.")
    channel = await channels_repo.get(db, ws, message.channel_id)
    await suspension.ensure_can_send(db, ws)
    await _check_channel(db, channel)
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": message.wamid,
    }
    if typing:
        body["typing_indicator"] = {"type": "text"}
    now = clock.now()
    outbox = OutboxMessage(
        workspace_id=ws,
        channel_id=channel.id,
        contact_id=message.contact_id,
        kind="read",
        recipient_key=recipient_key(ws, message.contact_id),
        callback_data=secrets.token_hex(16),
        payload_enc=await Vault(db).encrypt(
            ws, messages.subject_of(message.contact_id), PAYLOAD, json.dumps(body)
        ),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_by=principal.actor,
        created_at=now,
        updated_at=now,
    )
    await repo.add(db, outbox)
    await audit.record(
        db,
        actor=principal.actor,
        action="messages.marked_read",
        subject=messages.subject_of(message.contact_id),
        workspace_id=ws,
        ip=principal.ip,
        data={"message": message.id, "typing": typing},
    )
    after_commit(db, wakeup.notify_async)
    return outbox


async def sending_settings(
    db: AsyncSession,
    principal: Principal,
    channel_id: int,
    rate_per_s: int | None = None,
    resume: bool = False,
) -> ChannelSending:
    """Read or change a number's sending rate (1 to 1,000/s), or resume paused sending."""
    assert principal.workspace_id is not None
    channel = await channels_repo.get(db, principal.workspace_id, channel_id)
    state = await repo.ensure_sending_state(
        db, channel.id, channel.workspace_id, DEFAULT_RATE, clock.now()
    )
    if rate_per_s is not None or resume:
        if rate_per_s is not None:
            if not 1 <= rate_per_s <= MAX_RATE:
                raise InvalidInput("rate_per_s must be 1 to 1000.", field="rate_per_s")
            state.rate_per_s = rate_per_s
        if resume:
            state.paused_at = state.pause_reason = state.pause_code = None
        state.updated_at = clock.now()
        await audit.record(
            db,
            actor=principal.actor,
            action="channel.sending_changed",
            subject=f"channel:{channel.id}",
            workspace_id=channel.workspace_id,
            ip=principal.ip,
            data={"rate_per_s": state.rate_per_s, "resumed": resume},
        )
        after_commit(db, wakeup.notify_async)
    await db.flush()
    return state
