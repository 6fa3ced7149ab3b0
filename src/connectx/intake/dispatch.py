"""Turn a claimed batch of raw events into contacts, conversations, messages and statuses.

Every entry, change, message, status and preference of every event is handled. Work items are
partitioned by person (a union of the phone and BSUID keys they carry, per workspace) and each
partition is handled in Meta's timestamp order, so one conversation's messages are applied in
order; on PostgreSQL the partitions' advisory locks (taken in sorted order, so two processors
cannot deadlock) keep two processors from working on the same person at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.channels import repository as channels_repo
from connectx.contacts.service import Contacts
from connectx.conversations.service import Conversations
from connectx.intake import templates
from connectx.intake.batcher import BODY_COLUMN, day_subject
from connectx.integrations.whatsapp import inbound, schemas
from connectx.integrations.whatsapp.inbound import InboundMessage
from connectx.integrations.whatsapp.schemas import (
    Change,
    Identity,
    PreferenceUpdate,
    StatusUpdate,
    text,
)
from connectx.kit import clock
from connectx.messages.service import Messages
from connectx.models.channel import Channel
from connectx.models.webhook_event import MALFORMED, PROCESSED, WebhookEvent
from connectx.privacy.vault import Vault

log = logging.getLogger(__name__)

ITEMS = Counter("connectx_intake_items_total", "Updates processed, by kind.", ["kind"])
ERRORS = Counter("connectx_intake_webhook_errors_total", "errors[] reported by Meta.", ["code"])

TEMPLATE_FIELDS = frozenset(
    {
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
    }
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Tally:
    items: int = 0
    unrouted: int = 0
    ignored: int = 0


@dataclass
class Item:
    seq: int
    event_id: int
    channel: Channel
    identity: Identity
    payload: InboundMessage | StatusUpdate | PreferenceUpdate

    @property
    def at(self) -> datetime:
        payload = self.payload
        when = payload.sent_at if isinstance(payload, InboundMessage) else payload.occurred_at
        return when or EPOCH


@dataclass
class Outcome:
    """What a batch changed, for after-commit listeners (ids only)."""

    message_ids: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    conversation_ids: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    status_wamids: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))


def lock_key(workspace_id: int, kind: str, value: str) -> int:
    digest = hashlib.blake2b(f"{workspace_id}|{kind}|{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _keys(item: Item) -> list[tuple[str, str]]:
    keys = []
    if item.identity.bsuid:
        keys.append(("b", item.identity.bsuid))
    if item.identity.phone:
        keys.append(("p", item.identity.phone))
    return keys


def partition(items: list[Item]) -> list[list[Item]]:
    """Group items that concern the same person (sharing a phone or a BSUID, transitively)."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: Any, b: Any) -> None:
        parent[find(a)] = find(b)

    for item in items:
        ws = item.channel.workspace_id
        node = ("item", item.seq)
        find(node)
        for kind, value in _keys(item):
            union(node, (ws, kind, value))
    groups: dict[Any, list[Item]] = defaultdict(list)
    for item in items:
        groups[find(("item", item.seq))].append(item)
    ordered = sorted(groups.values(), key=lambda g: g[0].seq)
    return [sorted(g, key=lambda i: (i.at, i.seq)) for g in ordered]


class BatchProcessor:
    """Processes one claimed batch inside the caller's transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self.vault = Vault(db)
        self.contacts = Contacts(db)
        self.conversations = Conversations(db)
        self.messages = Messages(db)
        self.outcome = Outcome()
        self.tallies: dict[int, Tally] = {}
        self.malformed: set[int] = set()
        self._seq = 0
        self._stats: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    async def run(self, events: list[WebhookEvent]) -> None:
        decoded: list[tuple[WebhookEvent, list[Change]]] = []
        for event in events:
            self.tallies[event.id] = Tally()
            payload = await self._decode(event)
            if payload is None:
                self.malformed.add(event.id)
                continue
            decoded.append((event, schemas.changes(payload)))
        numbers = {c.phone_number_id for _, cs in decoded for c in cs if c.phone_number_id}
        channels = await channels_repo.live_channels_for_numbers(self.db, numbers)
        wabas = {c.waba_id for _, cs in decoded for c in cs if c.field in TEMPLATE_FIELDS}
        waba_workspaces = await channels_repo.workspaces_for_wabas(self.db, [w for w in wabas if w])
        items: list[Item] = []
        for event, changes in decoded:
            tally = self.tallies[event.id]
            for change in changes:
                await self._route(event, change, channels, waba_workspaces, items, tally)
        await self._prefetch(items)
        groups = partition(items)
        await self._lock(groups)
        for group in groups:
            for item in group:
                await self._handle(item)
        await self._finish_conversations()
        await self._audit()

    async def _decode(self, event: WebhookEvent) -> Any:
        if event.body_enc is None:
            return None
        body = await self.vault.decrypt_bytes(
            None, day_subject(event.received_at), BODY_COLUMN, event.body_enc
        )
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(payload, dict):
            return None
        return payload

    async def _route(
        self,
        event: WebhookEvent,
        change: Change,
        channels: dict[str, Channel],
        waba_workspaces: dict[str, int],
        items: list[Item],
        tally: Tally,
    ) -> None:
        if change.field in TEMPLATE_FIELDS:
            tally.items += 1
            workspace_id = waba_workspaces.get(change.waba_id or "")
            if workspace_id is None:
                tally.unrouted += 1
            await templates.record(self.db, change, workspace_id)
            ITEMS.labels("template").inc()
            return
        if change.field not in ("messages", "user_preferences"):
            tally.ignored += 1
            ITEMS.labels("ignored").inc()
            return
        channel = channels.get(change.phone_number_id or "")
        if channel is None:
            tally.unrouted += 1
            ITEMS.labels("unrouted").inc()
            return
        value = change.value
        messages, skipped = inbound.messages(value)
        tally.ignored += skipped
        for message in messages:
            self._add(items, event, channel, message.sender, message)
        for status in schemas.statuses(value):
            self._add(items, event, channel, status.recipient, status)
        for preference in schemas.preferences(value):
            self._add(items, event, channel, preference.identity, preference)
        for error in schemas.arr(value.get("errors")):
            code, _ = schemas.first_error([error])
            ERRORS.labels(str(code)).inc()
            tally.items += 1
        tally.items += len(messages) + skipped

    def _add(
        self,
        items: list[Item],
        event: WebhookEvent,
        channel: Channel,
        identity: Identity,
        payload: InboundMessage | StatusUpdate | PreferenceUpdate,
    ) -> None:
        self._seq += 1
        items.append(Item(self._seq, event.id, channel, identity, payload))
        if not isinstance(payload, InboundMessage):
            self.tallies[event.id].items += 1

    async def _prefetch(self, items: list[Item]) -> None:
        by_number: dict[str, list[str]] = defaultdict(list)
        for item in items:
            if isinstance(item.payload, InboundMessage):
                by_number[item.channel.phone_number_id].append(item.payload.wamid)
        for number, wamids in by_number.items():
            await self.messages.prefetch(number, wamids)

    async def _lock(self, groups: list[list[Item]]) -> None:
        if self.db.get_bind().dialect.name != "postgresql":
            return  # SQLite: the transaction holds the database's single write lock
        keys = sorted(
            {
                lock_key(item.channel.workspace_id, kind, value)
                for group in groups
                for item in group
                for kind, value in _keys(item)
            }
        )
        if keys:
            await self.db.execute(
                sql_text(
                    "SELECT count(pg_advisory_xact_lock(k)) "
                    "FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS s"
                ),
                {"keys": keys},
            )

    async def _handle(self, item: Item) -> None:
        payload = item.payload
        if isinstance(payload, InboundMessage):
            await self._message(item, payload)
        elif isinstance(payload, StatusUpdate):
            if await self.messages.record_status(item.channel, payload):
                self.outcome.status_wamids[item.channel.workspace_id].append(payload.wamid)
            self._stats[item.channel.workspace_id]["statuses"] += 1
            ITEMS.labels("status").inc()
        else:
            await self._preference(item, payload)

    async def _message(self, item: Item, message: InboundMessage) -> None:
        channel = item.channel
        ws = channel.workspace_id
        if self.messages.is_known(channel.phone_number_id, message.wamid):
            self._stats[ws]["duplicates"] += 1
            ITEMS.labels("duplicate").inc()
            return
        contact = await self.contacts.resolve(ws, message.sender, message.profile)
        if contact is None:  # neither phone nor BSUID: nobody to attribute it to
            self.tallies[item.event_id].ignored += 1
            ITEMS.labels("unattributed").inc()
            return
        at = message.sent_at or clock.now()
        if message.type == "system":
            contact = await self.contacts.apply_system(contact, message.system, message.sent_at)
            if text(message.system.get("type")) == "user_preference_changed":
                value = (text(message.system.get("marketing")) or "").lower()
                if value in ("stop", "resume"):
                    await self.contacts.record_preference(
                        contact,
                        channel.id,
                        "marketing_messages",
                        value,
                        text(message.system.get("body")),
                        message.sent_at,
                    )
        conversation = await self.conversations.open_for(ws, channel.id, contact.id, at)
        new_id = await self.messages.store_inbound(channel, contact, conversation, message, at)
        if new_id is None:
            self._stats[ws]["duplicates"] += 1
            ITEMS.labels("duplicate").inc()
            return
        self.conversations.record_message(
            conversation, at, inbound=True, opens_window=message.opens_window
        )
        if message.opens_window:
            await self.contacts.touch_inbound(contact, at)
        self.outcome.message_ids[ws].append(new_id)
        self.outcome.conversation_ids[ws].add(conversation.id)
        self._stats[ws]["messages"] += 1
        ITEMS.labels("message").inc()

    async def _preference(self, item: Item, preference: PreferenceUpdate) -> None:
        ws = item.channel.workspace_id
        contact = await self.contacts.resolve(ws, preference.identity, preference.profile)
        if contact is None:
            self.tallies[item.event_id].ignored += 1
            return
        await self.contacts.record_preference(
            contact,
            item.channel.id,
            preference.category,
            preference.value,
            preference.detail,
            preference.occurred_at,
        )
        self._stats[ws]["preferences"] += 1
        ITEMS.labels("preference").inc()

    async def _finish_conversations(self) -> None:
        if self.conversations.touched:
            await self.db.flush()

    async def _audit(self) -> None:
        """One audit entry per workspace per batch (ids and counts; each contact creation or
        change has its own entry)."""
        for ws, stats in self._stats.items():
            data: dict[str, Any] = {k: v for k, v in stats.items() if v}
            conversations = sorted(self.outcome.conversation_ids.get(ws, set()))
            if conversations:
                data["conversations"] = conversations[:100]
            if data:
                await audit.record(
                    self.db,
                    actor="system",
                    action="whatsapp.inbound_stored",
                    workspace_id=ws,
                    data=data,
                )

    def finish_status(self, event_id: int) -> str:
        return MALFORMED if event_id in self.malformed else PROCESSED
