"""Storing what customers send, and what Meta reports about what we sent.

* A message is stored once per (phone number id, wamid); a repeat delivery changes nothing.
* Text, captions, structured content and the raw JSON are sealed under the contact's key.
* Reactions (and their removal), edits and revokes are stored as messages of their own and
  applied to the message they name, whichever of the two arrives first; the latest by Meta's
  timestamp wins. A revoke erases the original's content (and its edits).
* Delivery statuses are recorded once per (wamid, status) and only move a message forward.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.conversations import paging
from connectx.integrations.whatsapp.inbound import Content, InboundMessage
from connectx.integrations.whatsapp.schemas import StatusUpdate
from connectx.kit import clock
from connectx.messages import repository as repo
from connectx.models.channel import Channel
from connectx.models.contact import Contact
from connectx.models.conversation import Conversation
from connectx.models.message import RECEIVED, STATUS_RANK, Message
from connectx.privacy.vault import Vault

BODY = "messages.body"
CONTENT = "messages.content"
RAW = "messages.raw"
REACTION = "messages.reaction"
SEALED_COLUMNS = (
    ("body_enc", BODY),
    ("content_enc", CONTENT),
    ("raw_enc", RAW),
    ("reaction_enc", REACTION),
)


def subject_of(contact_id: int) -> str:
    return f"contact:{contact_id}"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class Messages:
    """Message writes inside one transaction (one per processing batch)."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self.vault = Vault(db)
        self._known: dict[str, set[str]] = {}  # phone_number_id -> wamids stored
        self._awaited: dict[str, set[str]] = {}  # phone_number_id -> wamids effects wait for
        self._prefetched: set[str] = set()
        self._pending: list[tuple[dict[str, Any], InboundMessage, datetime]] = []
        self.stored = 0
        self.duplicates = 0
        self.statuses = 0

    async def _seal(self, workspace_id: int, contact_id: int, column: str, value: str) -> bytes:
        return await self.vault.encrypt(workspace_id, subject_of(contact_id), column, value)

    async def _open(self, message: Message, column: str, blob: bytes | None) -> str | None:
        return await self.vault.decrypt_or_none(
            message.workspace_id, subject_of(message.contact_id), column, blob
        )

    async def prefetch(self, phone_number_id: str, wamids: list[str]) -> None:
        """Learn, in two queries for a whole batch, which of its messages are stored already and
        which are named by reactions, edits or revokes stored before them."""
        known = self._known.setdefault(phone_number_id, set())
        known |= await repo.existing_wamids(self.db, phone_number_id, wamids)
        awaited = self._awaited.setdefault(phone_number_id, set())
        awaited |= await repo.awaited_targets(self.db, phone_number_id, wamids)
        self._prefetched.add(phone_number_id)

    def is_known(self, phone_number_id: str, wamid: str) -> bool:
        return wamid in self._known.get(phone_number_id, set())

    # -- inbound ------------------------------------------------------------------------------
    async def prepare_inbound(
        self,
        channel: Channel,
        contact: Contact,
        conversation: Conversation,
        message: InboundMessage,
        at: datetime,
    ) -> bool:
        """Seal ``message`` and queue it for :meth:`flush_inbound`. False when it is stored
        already (a repeat delivery)."""
        ws, pnid = channel.workspace_id, channel.phone_number_id
        if self.is_known(pnid, message.wamid):
            self.duplicates += 1
            return False
        self._known.setdefault(pnid, set()).add(message.wamid)
        content = message.content
        values: dict[str, Any] = {
            "workspace_id": ws,
            "channel_id": channel.id,
            "conversation_id": conversation.id,
            "contact_id": contact.id,
            "phone_number_id": pnid,
            "wamid": message.wamid,
            "direction": "in",
            "type": message.type,
            "status": RECEIVED,
            "status_rank": 0,
            "media_id": content.media_id,
            "media_mime_type": content.media_mime_type,
            "media_sha256": content.media_sha256,
            "reply_to_wamid": message.reply_to_wamid,
            "forwarded": message.forwarded,
            "frequently_forwarded": message.frequently_forwarded,
            "target_wamid": message.target_wamid,
            "sent_at": at,
            "created_at": clock.now(),
            "raw_enc": await self._seal(ws, contact.id, RAW, _json(message.raw)),
            "body_enc": None,
            "content_enc": None,
            "reaction_enc": None,
        }
        if content.body is not None:
            values["body_enc"] = await self._seal(ws, contact.id, BODY, content.body)
        if content.details:
            values["content_enc"] = await self._seal(
                ws, contact.id, CONTENT, _json(content.details)
            )
        if message.type == "reaction" and message.reaction:
            values["reaction_enc"] = await self._seal(ws, contact.id, REACTION, message.reaction)
        self._pending.append((values, message, at))
        return True

    async def flush_inbound(self) -> list[tuple[int, int, int]]:
        """Insert the queued messages (a multi-row INSERT per 500), then apply reactions, edits
        and revokes in arrival order. Returns (workspace, conversation, message id) of each row
        actually inserted."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        ids: dict[tuple[str, str], int] = {}
        for i in range(0, len(pending), 500):
            ids.update(await repo.insert_many(self.db, [v for v, _, _ in pending[i : i + 500]]))
        stored: list[tuple[int, int, int]] = []
        with_media: list[tuple[int, int, int]] = []
        for values, message, at in pending:
            pnid = values["phone_number_id"]
            new_id = ids.get((pnid, message.wamid))
            if new_id is None:
                self.duplicates += 1
                continue
            self.stored += 1
            stored.append((values["workspace_id"], values["conversation_id"], new_id))
            if message.target_wamid:
                applied = await self._apply(
                    pnid, message.type, message.target_wamid, at, message.reaction, message.edit
                )
                if not applied:
                    self._awaited.setdefault(pnid, set()).add(message.target_wamid)
            if pnid not in self._prefetched or message.wamid in self._awaited.get(pnid, set()):
                await self.apply_pending(pnid, message.wamid)
            if values["media_id"] and not message.target_wamid:
                with_media.append((values["workspace_id"], values["contact_id"], new_id))
        # Inbound media is downloaded in the background (connectx.media), queued in this
        # transaction.
        from connectx.media.service import schedule

        await schedule(self.db, with_media)
        return stored

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    async def apply_pending(self, phone_number_id: str, wamid: str) -> None:
        """Apply reactions, edits and revokes that arrived before the message they name."""
        for effect in await repo.targeting(self.db, phone_number_id, wamid):
            edit = None
            reaction = None
            if effect.type == "reaction":
                reaction = await self._open(effect, REACTION, effect.reaction_enc)
            elif effect.type == "edit":
                details = await self._open(effect, CONTENT, effect.content_enc)
                edit = Content(
                    type="edit",
                    body=await self._open(effect, BODY, effect.body_enc),
                    details=json.loads(details) if details else {},
                )
            await self._apply(phone_number_id, effect.type, wamid, effect.sent_at, reaction, edit)

    async def _apply(
        self,
        phone_number_id: str,
        kind: str,
        target_wamid: str,
        at: datetime,
        reaction: str | None,
        edit: Content | None,
    ) -> bool:
        target = await repo.by_wamid(self.db, phone_number_id, target_wamid)
        if target is None:
            return False
        ws, owner = target.workspace_id, target.contact_id
        if kind == "reaction":
            if target.reaction_at is None or at >= target.reaction_at:
                target.reaction_enc = (
                    await self._seal(ws, owner, REACTION, reaction) if reaction else None
                )
                target.reaction_at = at
        elif kind == "edit" and edit is not None:
            if target.revoked_at is None and (target.edited_at is None or at >= target.edited_at):
                if edit.body is not None:
                    target.body_enc = await self._seal(ws, owner, BODY, edit.body)
                if edit.details:
                    target.content_enc = await self._seal(ws, owner, CONTENT, _json(edit.details))
                target.edited_at = at
        elif kind == "revoke" and target.revoked_at is None:
            target.body_enc = target.content_enc = target.raw_enc = None
            target.media_id = target.media_mime_type = target.media_sha256 = None
            target.revoked_at = at
            await repo.wipe_edits_of(self.db, phone_number_id, target_wamid)
        await self.db.flush()
        return True

    # -- statuses -----------------------------------------------------------------------------
    async def record_statuses(
        self, channel: Channel, statuses: list[StatusUpdate]
    ) -> list[repo.StatusRef]:
        """Record status callbacks (each (wamid, status) once) and move each message to the
        furthest status reported, never backwards: in bulk, whatever their order. Returns the
        messages found for them, with their status after the moves (a wamid not among them had
        no message when the moves were made)."""
        events: dict[tuple[str, str], dict[str, Any]] = {}
        best: dict[str, tuple[int, datetime, StatusUpdate]] = {}
        now = clock.now()
        for status in statuses:
            at = status.occurred_at or now
            key = (status.wamid, status.status[:16])
            if key not in events:
                events[key] = {
                    "workspace_id": channel.workspace_id,
                    "channel_id": channel.id,
                    "wamid": status.wamid,
                    "status": status.status[:16],
                    "occurred_at": at,
                    "error_code": status.error_code,
                    "error_title": status.error_title,
                    "pricing": status.pricing,
                    "meta_conversation": status.conversation,
                    "callback_data": status.callback_data,
                    "created_at": now,
                }
            rank = STATUS_RANK.get(status.status)
            if rank is None:
                continue
            held = best.get(status.wamid)
            if held is None or rank > held[0] or (rank == held[0] and at < held[1]):
                best[status.wamid] = (rank, at, status)
        await repo.add_status_events(self.db, list(events.values()))
        refs = await repo.advance_statuses(
            self.db,
            channel.workspace_id,
            channel.phone_number_id,
            [
                {
                    "wamid": wamid,
                    "status": status.status,
                    "rank": rank,
                    "at": at,
                    "error_code": status.error_code if status.status == "failed" else None,
                    "error_title": status.error_title if status.status == "failed" else None,
                }
                for wamid, (rank, at, status) in best.items()
            ],
        )
        failed = {w: st for w, (_, _, st) in best.items() if st.status == "failed"}
        if failed:  # rare: a privacy notice among them goes on its request's timeline
            from connectx.privacy.requests import notices

            await notices.on_failed(
                self.db,
                [
                    (i, failed[w].error_code, failed[w].error_title)
                    for i, _, _, w in refs
                    if w in failed
                ],
            )
        self.statuses += len(statuses)
        return refs


async def apply_recorded_statuses(db: AsyncSession, found: list[Message]) -> None:
    """For the sender: after storing outbound messages, apply the status callbacks recorded
    before their rows had the wamid (webhooks can beat the API response). Every status move
    first, then the failed privacy notices among them (messages' rows before requests' rows,
    the order ``Messages.record_statuses`` locks them in too)."""
    failures: list[tuple[int, int | None, str | None]] = []
    for message in found:
        for event in await repo.status_events_of(db, message.wamid):
            rank = STATUS_RANK.get(event.status)
            if rank is None:
                continue
            code, title = event.error_code, event.error_title
            await repo.advance_status(
                db, message, event.status, rank, event.occurred_at, code, title
            )
            if event.status == "failed":
                failures.append((message.id, code, title))
    if failures:
        from connectx.privacy.requests import notices

        await notices.on_failed(db, failures)


async def apply_late_statuses(db: AsyncSession, found: list[Message]) -> None:
    """Apply the status callbacks recorded for these messages before they had their wamid
    (or before the transaction that recorded them could see it), and publish each message's
    status once this transaction commits. Two parties call it, each after its own commit, so
    one of them always sees both the wamid and the callbacks: the sender once it stored Meta's
    answer (outbound/pacer.py), and on PostgreSQL the webhook processor for callbacks that found
    no message (intake/processor.py)."""
    from connectx.realtime import sent

    await apply_recorded_statuses(db, found)
    await sent.outbound_recorded(db, [(m.workspace_id, m.id) for m in found])


async def reassign_contact(
    db: AsyncSession, vault: Vault, workspace_id: int, src_contact: int, dst_contact: int
) -> None:
    """Move ``src_contact``'s messages to ``dst_contact``, re-sealing their content under the
    destination's key (the source's key is destroyed after a merge)."""
    for message in await repo.of_contact(db, src_contact):
        for attr, column in SEALED_COLUMNS:
            blob = getattr(message, attr)
            if blob is None:
                continue
            plain = await vault.decrypt_or_none(workspace_id, subject_of(src_contact), column, blob)
            setattr(
                message,
                attr,
                None
                if plain is None
                else await vault.encrypt(workspace_id, subject_of(dst_contact), column, plain),
            )
        message.contact_id = dst_contact
    await db.flush()


@dataclass
class MessageView:
    id: int
    wamid: str
    conversation_id: int
    contact_id: int
    direction: str
    type: str
    status: str
    body: str | None
    content: dict[str, Any]
    media: dict[str, str | None] | None
    reply_to_wamid: str | None
    forwarded: bool
    frequently_forwarded: bool
    target_wamid: str | None
    reaction: str | None
    error: dict[str, Any] | None
    sent_at: datetime
    status_at: datetime | None
    edited_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


async def views(db: AsyncSession, rows: list[Message]) -> list[MessageView]:
    """:func:`view` of many messages, their media states read in one query (a thread page)."""
    from connectx.media import repository as media_files

    inbound_media = [m for m in rows if m.media_id and m.direction == "in"]
    states: dict[int, str] = {}
    if inbound_media:
        states = await media_files.states_of(
            db, inbound_media[0].workspace_id, [m.id for m in inbound_media]
        )
    return [await view(db, m, media_states=states) for m in rows]


async def view(
    db: AsyncSession, message: Message, *, media_states: dict[int, str] | None = None
) -> MessageView:
    """A message as people see it; ``media_states`` are the media states already read for a
    page of messages (else this message's is read here)."""
    vault = Vault(db)

    async def opened(column: str, blob: bytes | None) -> str | None:
        return await vault.decrypt_or_none(
            message.workspace_id, subject_of(message.contact_id), column, blob
        )

    details = await opened(CONTENT, message.content_enc)
    media_state: str | None = None
    if message.media_id and message.direction == "in":
        if media_states is None:
            from connectx.media import repository as media_files

            media_states = await media_files.states_of(db, message.workspace_id, [message.id])
        media_state = media_states.get(message.id)
    return MessageView(
        id=message.id,
        wamid=message.wamid,
        conversation_id=message.conversation_id,
        contact_id=message.contact_id,
        direction=message.direction,
        type=message.type,
        status=message.status,
        body=await opened(BODY, message.body_enc),
        content=json.loads(details) if details else {},
        media=(
            {
                "id": message.media_id,
                "mime_type": message.media_mime_type,
                "sha256": message.media_sha256,
                "state": media_state,  # pending | stored | rejected | failed (connectx.media)
            }
            if message.media_id
            else None
        ),
        reply_to_wamid=message.reply_to_wamid,
        forwarded=message.forwarded,
        frequently_forwarded=message.frequently_forwarded,
        target_wamid=message.target_wamid,
        reaction=await opened(REACTION, message.reaction_enc),
        error=(
            {"code": message.error_code, "title": message.error_title}
            if message.error_code is not None or message.error_title
            else None
        ),
        sent_at=message.sent_at,
        status_at=message.status_at,
        edited_at=message.edited_at,
        revoked_at=message.revoked_at,
        created_at=message.created_at,
    )


async def list_for(
    db: AsyncSession,
    principal: Principal,
    conversation_id: int,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[MessageView], str | None]:
    """A page of a conversation's messages, newest first (read on with ``next_cursor``)."""
    from connectx.conversations import repository as conversations

    assert principal.workspace_id is not None
    ws = principal.workspace_id
    conversation = await conversations.get(db, ws, conversation_id)
    before = paging.decode_time_id(cursor) if cursor else None
    rows = await repo.page(db, ws, conversation.id, before, paging.check_limit(limit) + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    shown = await views(db, rows)
    await audit.record_view(
        db,
        actor=principal.actor,
        action="messages.viewed",
        subject=f"contact:{conversation.contact_id}",
        workspace_id=ws,
        ip=principal.ip,
        data={"conversation": conversation.id, "messages": len(shown)},
    )
    return shown, paging.encode(rows[-1].sent_at, rows[-1].id) if more else None
