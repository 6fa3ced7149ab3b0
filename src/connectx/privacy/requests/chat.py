"""Filing a request on WhatsApp: a customer writes a keyword ("MY DATA", "DELETE MY DATA",
"بياناتي", "احذف بياناتي", or the workspace's own) to the business and is guided in the chat.

    customer: MY DATA          ──▶ menu of rights (reply 1-7)
    customer: 3                ──▶ "erase your data? reply YES to confirm, NO to stop"
    customer: DELETE MY DATA   ──▶ the same confirmation directly
    customer: YES              ──▶ request filed, verified by the channel (it came from the
                                   number itself), reference and due date in the reply

A six-digit message answers a code sent for a request filed on the customer's behalf.
"CANCEL R-7K3M9QX2" (or WITHDRAW, الغاء, سحب) withdraws the customer's own request with that
reference while it waits for a decision.

Called by the intake processor for each inbound message, inside its transaction, so it must be
cheap for the messages that are none of this: non-text messages and long texts return at once;
a text is compared with the workspace's keywords (cached per process); only a short answer
("1"-"7", yes/no, six digits) costs one indexed lookup. Replies go through the outbox.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.integrations.whatsapp.inbound import InboundMessage
from connectx.kit import clock
from connectx.models.channel import Channel
from connectx.models.contact import Contact
from connectx.models.data_request import RequestDialog
from connectx.privacy.requests import notices, service, settings, verification
from connectx.privacy.requests import repository as repo

log = logging.getLogger(__name__)

TEXT_TYPES = frozenset({"text", "interactive", "button"})
MAX_LEN = 60
DIALOG_LIFE = timedelta(minutes=30)
MENU = (
    "access",
    "rectification",
    "erasure",
    "restriction",
    "objection",
    "portability",
    "withdrawal",
)
YES = frozenset({"yes", "y", "confirm", "نعم", "اكيد", "موافق"})
NO = frozenset({"no", "n", "cancel", "لا", "الغاء"})  # not "stop": that is the opt-out
_CODE = re.compile(r"^\d{6}$")
_DIGIT = re.compile(r"^[1-7]$")
_ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")
# As normalised: "CANCEL R-7K3M9QX2" -> "cancel r 7k3m9qx2".
_WITHDRAW = re.compile(r"^(?:cancel|withdraw|الغاء|سحب) r ([0-9a-z]{8})$")


def _menu_text(business: str) -> str:
    lines = [f"Your data held by {business}: what would you like? Reply with a number."]
    lines += [f"{i}. {service.KIND_WORDS[k].capitalize()}" for i, k in enumerate(MENU, 1)]
    lines.append("ما الذي تريده بخصوص بياناتك؟ أرسل رقماً من 1 إلى 7.")
    return "\n".join(lines)


def _confirm_text(kind: str) -> str:
    extra = {
        "erasure": " Everything we may erase is erased, and this chat ends.",
        "rectification": " The business will ask you here what should be corrected.",
        "withdrawal": " You will no longer receive marketing messages.",
        "objection": " Marketing messages stop at once.",
    }.get(kind, "")
    return (
        f"You are asking for {service.KIND_WORDS[kind]}.{extra} Reply YES to confirm, NO to stop."
        "\nللتأكيد أرسل: نعم. للإلغاء أرسل: لا."
    )


async def on_inbound(
    db: AsyncSession, channel: Channel, contact: Contact, message: InboundMessage
) -> None:
    """The intake processor's one call: handle a keyword, a dialog answer or a code."""
    if message.type not in TEXT_TYPES:
        return
    body = message.content.body
    if not body or len(body) > MAX_LEN:
        return
    key = settings.normalise(body.translate(_ARABIC_DIGITS))
    if not key:
        return
    try:
        if not await _may_concern(db, channel.workspace_id, key):
            return  # most messages: no savepoint (it flushes and snapshots the session)
        async with db.begin_nested():
            await _handle(db, channel, contact, key)
    except Exception as exc:
        # A privacy dialog never fails the customer's message: it is stored either way.
        log.error("privacy dialog failed: %s", type(exc).__name__)


async def _may_concern(db: AsyncSession, workspace_id: int, key: str) -> bool:
    """Whether ``key`` is a code, a keyword or a dialog answer (what :func:`_handle` acts on)."""
    if _CODE.match(key) or _WITHDRAW.match(key) or _DIGIT.match(key) or key in YES or key in NO:
        return True
    return any(key == keyword["key"] for keyword in await settings.keywords_of(db, workspace_id))


async def _handle(db: AsyncSession, channel: Channel, contact: Contact, key: str) -> None:
    # Every message this acts on must pass _may_concern first (keep the two in step).
    ws = channel.workspace_id
    if _CODE.match(key):
        await _code(db, ws, contact, key)
        return
    if found := _WITHDRAW.match(key):
        await _withdraw(db, ws, contact, "R-" + found.group(1).upper())
        return
    for keyword in await settings.keywords_of(db, ws):
        if key == keyword["key"]:
            await _start(db, channel, contact, keyword["kind"])
            return
    if _DIGIT.match(key) or key in YES or key in NO:
        dialog = await repo.dialog_of(db, ws, contact.id)
        if dialog is not None:
            await _answer(db, channel, contact, dialog, key)


async def _business(db: AsyncSession, workspace_id: int) -> str:
    ws = await repo.workspace(db, workspace_id)
    return ws.name if ws is not None else "this business"


async def _say(db: AsyncSession, workspace_id: int, contact: Contact, text: str) -> None:
    await notices.send_whatsapp(db, workspace_id, contact.id, text)


async def _start(db: AsyncSession, channel: Channel, contact: Contact, kind: str | None) -> None:
    ws = channel.workspace_id
    await repo.drop_dialog(db, ws, contact.id)
    now = clock.now()
    dialog = RequestDialog(
        workspace_id=ws,
        contact_id=contact.id,
        channel_id=channel.id,
        step="confirm" if kind else "choose",
        kind=kind,
        expires_at=now + DIALOG_LIFE,
        created_at=now,
    )
    await repo.add(db, dialog)
    text = _confirm_text(kind) if kind else _menu_text(await _business(db, ws))
    await _say(db, ws, contact, text)


async def _answer(
    db: AsyncSession, channel: Channel, contact: Contact, dialog: RequestDialog, key: str
) -> None:
    ws = channel.workspace_id
    if dialog.expires_at <= clock.now():
        await repo.drop_dialog(db, ws, contact.id)
        return
    if key in NO:
        await repo.drop_dialog(db, ws, contact.id)
        await _say(db, ws, contact, "Stopped: no request was filed. تم الإلغاء.")
        return
    if dialog.step == "choose" and _DIGIT.match(key):
        dialog.kind = MENU[int(key) - 1]
        dialog.step = "confirm"
        dialog.expires_at = clock.now() + DIALOG_LIFE
        await db.flush()
        await _say(db, ws, contact, _confirm_text(dialog.kind))
        return
    if dialog.step == "confirm" and key in YES and dialog.kind:
        await repo.drop_dialog(db, ws, contact.id)
        await _file(db, channel, contact, dialog.kind)


async def _file(db: AsyncSession, channel: Channel, contact: Contact, kind: str) -> None:
    ws = channel.workspace_id
    params = {"purpose": "marketing"} if kind in ("withdrawal", "objection") else None
    filing = service.Filing(
        kind=kind,
        subject_kind=service.CUSTOMER,
        source="whatsapp",
        filed_by=f"contact:{contact.id}",
        workspace_id=ws,
        subject=f"contact:{contact.id}",
        params=params,
        notify_via="whatsapp",
    )
    # Sent from the number itself: verified by the channel. mark_verified tells the customer
    # (reference, due date) in this chat.
    await service.file(db, filing, verified_by="whatsapp_channel")


async def _code(db: AsyncSession, workspace_id: int, contact: Contact, code: str) -> None:
    rows = await repo.list_in_workspace(
        db, workspace_id, status="unverified", subject=f"contact:{contact.id}", limit=5
    )
    live = [r for r in rows if r.code_hash is not None]
    if not live:
        return
    check = await verification.check_code(db, live[0], code, actor=f"contact:{contact.id}")
    if not check.ok:
        await _say(db, workspace_id, contact, check.message)


async def _withdraw(db: AsyncSession, workspace_id: int, contact: Contact, reference: str) -> None:
    """Withdraw the customer's own request (sent from their number: the channel is the proof)."""
    from connectx.kit.errors import Conflict

    req = await repo.by_reference(db, reference)
    if req is None or req.workspace_id != workspace_id or req.subject != f"contact:{contact.id}":
        await _say(db, workspace_id, contact, f"No request of yours has the reference {reference}.")
        return
    try:
        # The service tells the customer in this chat that it is withdrawn.
        await service.withdraw(db, req, actor=f"contact:{contact.id}", via="whatsapp")
    except Conflict as exc:
        await _say(db, workspace_id, contact, exc.detail)
