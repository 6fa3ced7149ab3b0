"""Turn claimed raw events into contacts, conversations, messages, statuses and preferences.

Every entry, change, message, status and preference of every event is handled. An event's
updates are applied in Meta's timestamp order, so a conversation's messages and a contact's
changes happen in order. On PostgreSQL the processor first takes an advisory lock per person
(phone and BSUID, per workspace), all in sorted order so two processors never deadlock: two
processors never work on the same person at once, and each person's work is done in order.

Work per transaction is bounded by a time budget for applying updates (``TX_BUDGET_S``), and on
SQLite cut short when a group commit of webhook events waits for the write lock
(:mod:`connectx.intake.turns`, after ``MIN_TURN_S``): an event with more updates than fit is
continued in the next transaction from where it stopped (``webhook_events.progress``), and claimed
events not started stay pending as they were. This is safe because applying an update twice changes
nothing (uniqueness constraints, forward-only statuses, latest-timestamp-wins effects); the event is
marked processed in the transaction that applies its last update. The processor may share its event
loop with the web server (embedded mode), so it gives the loop a turn every ``YIELD_EVERY_S`` of CPU
work.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.channels import repository as channels_repo
from connectx.contacts.service import Contacts
from connectx.conversations.service import Conversations
from connectx.inbox import assignment
from connectx.intake import config_cache, templates, turns
from connectx.intake.batcher import day_subject
from connectx.intake.raw_body import open_body
from connectx.intake.repository import Claimed
from connectx.integrations.whatsapp import inbound, schemas
from connectx.integrations.whatsapp.inbound import InboundMessage
from connectx.integrations.whatsapp.schemas import (
    Change,
    Identity,
    PreferenceUpdate,
    StatusUpdate,
    text,
)
from connectx.kit import clock, unicode_repair
from connectx.messages.service import Messages
from connectx.models.channel import Channel
from connectx.models.webhook_event import MALFORMED, PROCESSED
from connectx.privacy.keywords import KeywordWatcher
from connectx.privacy.requests import chat as privacy_chat
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
TX_BUDGET_S = 0.5  # stop starting new updates after applying them this long in a transaction
MIN_TURN_S = 0.010  # ... or after this long when intake waits for SQLite's write lock
YIELD_EVERY_S = 0.002  # give the event loop a turn this often (it may be the web server's)


@dataclass
class Tally:
    items: int = 0
    unrouted: int = 0
    ignored: int = 0


Payload = InboundMessage | StatusUpdate | PreferenceUpdate | Change


@dataclass
class Item:
    seq: int
    channel: Channel | None  # None for template updates (routed by WABA)
    identity: Identity
    payload: Payload
    workspace_id: int | None = None

    @property
    def at(self) -> datetime:
        payload = self.payload
        if isinstance(payload, InboundMessage):
            return payload.sent_at or clock.EPOCH
        if isinstance(payload, StatusUpdate | PreferenceUpdate):
            return payload.occurred_at or clock.EPOCH
        return clock.EPOCH

    @property
    def workspace(self) -> int | None:
        return self.channel.workspace_id if self.channel is not None else self.workspace_id


@dataclass
class Plan:
    """What one event holds, in the order it is applied."""

    event: Claimed
    items: list[Item] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    malformed: bool = False
    done_upto: int = 0  # items applied once this transaction commits
    held_for: int | None = None  # a suspended workspace this event has updates for


Ref = tuple[int, int, str]  # (message id, conversation id, direction or status)


@dataclass
class Outcome:
    """What a batch changed, for after-commit listeners (ids only), with what real-time
    listeners publish, so that none of them needs a query (or, on SQLite, the write lock) after
    the commit: per workspace, the messages stored as (message id, conversation id, direction)
    and the messages that got status callbacks as (message id, conversation id, their status
    after this batch); per (workspace, phone number id), the wamids of status callbacks that
    found no message (a message sent elsewhere, or one whose sender has not stored Meta's answer
    yet: intake/processor.py looks again)."""

    message_ids: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    conversation_ids: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    unmatched_statuses: dict[tuple[int, str], set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )
    messages: dict[int, list[Ref]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, list[Ref]] = field(default_factory=lambda: defaultdict(list))


def _count_updates(changes: list[Change]) -> int:
    """About how many updates ``changes`` hold (messages, statuses, anything else as one)."""
    total = 0
    for change in changes:
        value = change.value
        found = len(schemas.arr(value.get("messages"))) + len(schemas.arr(value.get("statuses")))
        total += found or 1
    return total


@dataclass(slots=True)
class Parsed:
    """One change of an event, parsed: pure work (no database, no channel), so on SQLite it is
    done before the write lock is taken (:func:`pick`)."""

    change: Change
    messages: list[InboundMessage] = field(default_factory=list)
    skipped: int = 0
    statuses: list[StatusUpdate] = field(default_factory=list)
    preferences: list[PreferenceUpdate] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)


def parse(change: Change) -> Parsed:
    if change.field not in ("messages", "user_preferences"):
        return Parsed(change)  # template updates and fields we ignore: the change is enough
    value = change.value
    messages, skipped = inbound.messages(value)
    return Parsed(
        change,
        messages,
        skipped,
        schemas.statuses(value),
        schemas.preferences(value),
        schemas.arr(value.get("errors")),
    )


@dataclass(slots=True)
class Decoded:
    """An event's raw body opened, decoded and parsed (``changes`` None: malformed), with about
    how many updates it holds."""

    changes: list[Parsed] | None
    updates: int = 0


class Decoder:
    """Opens and parses raw events (AES-GCM, JSON, the tolerant parser)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._days: dict[date, str] = {}  # raw bodies' key subjects by day received

    async def decode(self, event: Claimed) -> Decoded:
        if event.body_enc is None:
            return Decoded(None)
        day = event.received_at.date()
        subject = self._days.get(day)
        if subject is None:
            subject = self._days[day] = day_subject(event.received_at)
        body = await open_body(self.vault, subject, event.body_enc)
        try:
            payload = unicode_repair.repaired(_JSON.decode(_json_text(body)), body)
        except (UnicodeDecodeError, ValueError):
            return Decoded(None)
        if not isinstance(payload, dict):
            return Decoded(None)
        changes = schemas.changes(payload)
        return Decoded([parse(c) for c in changes], _count_updates(changes))


def _json_text(body: bytes) -> str:
    """``body`` as :func:`json.loads` reads bytes (encoding detected, surrogates passed), with
    UTF-8 (Meta's) recognised first: detecting it cost more than decoding."""
    if body[:1] == b"{" and body[1:2] != b"\x00":
        return body.decode("utf-8", "surrogatepass")
    return body.decode(json.detect_encoding(body), "surrogatepass")


def _finite(literal: str) -> float | None:
    """A JSON number with a fraction or exponent; None where it is out of a float's range
    (``1e400`` reads as infinity, which no JSON column, integer or PostgreSQL accepts: one such
    value failed its whole event, every message of it parked)."""
    value = float(literal)
    return value if math.isfinite(value) else None


def _no_number(_literal: str) -> None:
    """``NaN``, ``Infinity``, ``-Infinity`` (not JSON; Python's parser accepts them): absent."""
    return None


# Built once (``json.loads`` with hooks builds a decoder per call)
_JSON = json.JSONDecoder(parse_float=_finite, parse_constant=_no_number)


async def pick(
    decoder: Decoder,
    events: list[Claimed],
    max_items: int | None,
    known: dict[int, Decoded] | None = None,
) -> list[tuple[Claimed, Decoded]]:
    """The claimed events a transaction takes on, in order, decoded (or taken from ``known``,
    decoded before the transaction): as many as ``max_items`` updates hold (None: all)."""
    picked: list[tuple[Claimed, Decoded]] = []
    wanted = 0  # updates decoded so far (about: counted before planning)
    for n, event in enumerate(events):
        if max_items is not None and wanted >= max_items:
            break  # enough for this transaction: the other claimed events stay as they are
        decoded = known.get(event.id) if known is not None else None
        if decoded is None:
            if n % 8 == 7:
                await asyncio.sleep(0)  # decoding a batch is CPU work: let the loop in
            decoded = await decoder.decode(event)
        if decoded.changes is not None:
            left = decoded.updates - event.progress
            if max_items is not None and wanted and wanted + left > max_items:
                # it would be cut at the budget: left whole for the next transaction (an
                # event continued later is decoded and planned again, and its progress
                # written; only the first event of a transaction is ever cut by the budget)
                break
            wanted += left
        picked.append((event, decoded))
    return picked


def lock_key(workspace_id: int, kind: str, value: str) -> int:
    """The PostgreSQL advisory-lock key of a person (per workspace)."""
    digest = hashlib.blake2b(f"{workspace_id}|{kind}|{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def person_keys(workspace_id: int, identity: Identity) -> list[int]:
    keys = []
    if identity.bsuid:
        keys.append(lock_key(workspace_id, "b", identity.bsuid))
    if identity.phone:
        keys.append(lock_key(workspace_id, "p", identity.phone))
    return keys


async def lock_people(db: AsyncSession, keys: set[int]) -> None:
    """Take the advisory locks of these people for this transaction (PostgreSQL; on SQLite
    the transaction already holds the database's single write lock). Other writers of contacts
    and conversations (imports, outbound to a new number) take the same locks."""
    if not keys or db.get_bind().dialect.name != "postgresql":
        return
    await db.execute(
        sql_text(
            "SELECT count(pg_advisory_xact_lock(k)) "
            "FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS s"
        ),
        {"keys": sorted(keys)},
    )


class BatchProcessor:
    """Processes claimed events inside the caller's transaction."""

    def __init__(
        self, db: AsyncSession, budget_s: float = TX_BUDGET_S, max_items: int | None = None
    ) -> None:
        self.db = db
        self.budget_s = budget_s
        # At most this many updates in this transaction (None: the time budget decides). After
        # a turn cut short for intake, the processor asks for about what fitted, so it does not
        # decode, plan and prefetch thousands of updates to apply a few dozen.
        self.max_items = max_items
        self.applied = 0
        self.vault = Vault(db)
        self.contacts = Contacts(db, defer_suppression=True)
        self.keywords = KeywordWatcher(db)
        self.conversations = Conversations(db, guarded=False)
        self.contacts.on_merge = self._merged
        self.contacts.before_merge = self._flush_messages
        self.messages = Messages(db)
        self.outcome = Outcome()
        self.plans: list[Plan] = []
        self._seq = 0
        self._statuses: dict[int, tuple[Channel, list[StatusUpdate]]] = {}
        self._stats: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.cut_short = False  # stopped before the last claimed update (budget or intake)
        self.interrupted = False  # ... because time ran out or intake waited
        self.planned = 0  # updates planned (what the claimed events held, about)
        self._budget = budget_s
        self.decoder = Decoder(self.vault)

    # -- the batch ----------------------------------------------------------------------------
    async def run(self, events: list[Claimed], known: dict[int, Decoded] | None = None) -> None:
        """Apply ``events`` (decoded here, or taken from ``known``: decoded before the
        transaction) in the caller's transaction."""
        try:
            await self._run(events, known)
        finally:
            self.close()

    def close(self) -> None:
        """Let go of the hooks given to the contacts service (bound methods of this batch): a
        reference cycle through them kept everything the batch decoded and planned (~10 KB an
        update) alive until the garbage collector's next full collection, which the quieted
        collector makes rare: the processing process's peak memory grew by tens of MB with
        large claims."""
        self.contacts.on_merge = None
        self.contacts.before_merge = None

    async def _run(self, events: list[Claimed], known: dict[int, Decoded] | None) -> None:
        started = time.monotonic()
        decoded: list[tuple[Plan, list[Parsed]]] = []
        for event, found in await pick(self.decoder, events, self.max_items, known):
            plan = Plan(event)
            if found.changes is None:
                plan.malformed = True
            else:
                decoded.append((plan, found.changes))
                self.planned += found.updates
            self.plans.append(plan)
        # Channels, suspensions and keywords as of this transaction, kept between transactions
        # (one statement: the configuration's generation; config_cache)
        config = await config_cache.for_transaction(self.db)
        self.keywords.matcher_of = config.matcher
        numbers = {
            p.change.phone_number_id for _, ps in decoded for p in ps if p.change.phone_number_id
        }
        channels = await config.live_channels(numbers)
        wabas = {
            p.change.waba_id for _, ps in decoded for p in ps if p.change.field in TEMPLATE_FIELDS
        }
        waba_workspaces = await channels_repo.workspaces_for_wabas(self.db, [w for w in wabas if w])
        for plan, parsed in decoded:
            for one in parsed:
                self._plan(plan, one, channels, waba_workspaces)
            plan.items.sort(key=lambda i: (i.at, i.seq))
        await self._hold_suspended(config)
        todo = [
            (plan, plan.items[plan.event.progress :])
            for plan in self.plans
            if plan.held_for is None
        ]
        limit = self.max_items if self.max_items is not None else sum(len(i) for _, i in todo)
        ahead = [item for _, items in todo for item in items][:limit]  # what may be applied
        if self.db.get_bind().dialect.name == "postgresql":  # (SQLite: one writer anyway)
            people = {(i.channel.workspace_id, i.identity) for i in ahead if i.channel is not None}
            await lock_people(self.db, {k for ws, who in people for k in person_keys(ws, who)})
        await self._prefetch(ahead)
        out_of_time = False
        applied = 0
        # The budget counts from here: decoding, planning, locking and prefetching are paid
        # once per transaction whatever its size, so a slow start must not shrink the work
        # done for it to one update (a 1,000-update POST would take 1,000 transactions).
        paused = applying = time.monotonic()
        # ... and is at least as long as that preparation took (on a machine starved of CPU a
        # transaction would otherwise spend nearly all its time preparing).
        self._budget = max(self.budget_s, applying - started)
        for plan, items in todo:
            plan.done_upto = plan.event.progress
            for item in items:
                now = time.monotonic()
                if (
                    out_of_time
                    or applied >= limit
                    or (applied and self._time_to_stop(now - applying))
                ):
                    out_of_time = True
                    break
                await self._handle(item)
                plan.done_upto += 1
                applied += 1
                if now - paused > YIELD_EVERY_S:  # let the loop serve requests meanwhile
                    await asyncio.sleep(0)
                    paused = time.monotonic()
        self.cut_short = out_of_time or len(self.plans) < len(events)
        self.interrupted = out_of_time and applied < limit
        self.applied = applied
        await self._flush_messages()
        await self.contacts.check_suppressed()
        await self.keywords.apply()
        for channel, statuses in self._statuses.values():
            refs = await self.messages.record_statuses(channel, statuses)
            ws = channel.workspace_id
            wamids = [s.wamid for s in statuses]
            self.outcome.statuses[ws].extend((i, c, status) for i, c, status, _ in refs)
            unmatched = set(wamids).difference(r[3] for r in refs)
            if unmatched:
                self.outcome.unmatched_statuses[(ws, channel.phone_number_id)] |= unmatched
            self._stats[channel.workspace_id]["statuses"] += len(statuses)
            ITEMS.labels("status").inc(len(statuses))
        await self.conversations.write_activity()  # (in memory until now: no ORM flush)
        await self.contacts.write_inbound()
        await self.db.flush()
        # Round-robin for the conversations this transaction opened: committed with them, so
        # an assignment is never lost (an after-commit step could fail after the commit).
        await assignment.assign_opened(self.db, self.conversations.opened)
        await self._audit()

    async def _hold_suspended(self, config: config_cache.Configuration) -> None:
        """An event with updates for a suspended workspace waits, whole, until the suspension
        is lifted: nothing of it is applied now (its other workspaces' updates wait with it)."""
        wanted = [
            (
                plan,
                {i.workspace for i in plan.items[plan.event.progress :] if i.workspace is not None},
            )
            for plan in self.plans
            if not plan.malformed
        ]
        suspended = await config.suspended_among(
            {ws for _, workspaces in wanted for ws in workspaces}
        )
        for plan, workspaces in wanted:
            if workspaces & suspended:
                plan.held_for = min(workspaces & suspended)
                plan.done_upto = plan.event.progress

    def _time_to_stop(self, elapsed: float) -> bool:
        """Stop starting updates: the budget is spent, or a group commit of webhook events waits
        for this transaction's write lock (SQLite, same loop) and the turn's minimum is done."""
        return elapsed > self._budget or (elapsed > MIN_TURN_S and turns.intake_waiting())

    def finished(self, plan: Plan) -> bool:
        return plan.malformed or plan.done_upto >= len(plan.items)

    def status_of(self, plan: Plan) -> str:
        return MALFORMED if plan.malformed else PROCESSED

    def _merged(self, kept: int, absorbed: int) -> None:
        self.conversations.forget_contact(kept)
        self.conversations.forget_contact(absorbed)

    # -- planning -----------------------------------------------------------------------------
    def _add(
        self,
        plan: Plan,
        channel: Channel | None,
        identity: Identity,
        payload: Payload,
        workspace_id: int | None = None,
    ) -> None:
        self._seq += 1
        plan.items.append(Item(self._seq, channel, identity, payload, workspace_id))
        plan.tally.items += 1

    def _plan(
        self,
        plan: Plan,
        parsed: Parsed,
        channels: dict[str, Channel],
        waba_workspaces: dict[str, int],
    ) -> None:
        change = parsed.change
        tally = plan.tally
        if change.field in TEMPLATE_FIELDS:
            workspace_id = waba_workspaces.get(change.waba_id or "")
            if workspace_id is None:
                tally.unrouted += 1
            self._add(plan, None, Identity(), change, workspace_id)
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
        tally.ignored += parsed.skipped
        for message in parsed.messages:
            self._add(plan, channel, message.sender, message)
        for status in parsed.statuses:
            self._add(plan, channel, status.recipient, status)
        for preference in parsed.preferences:
            self._add(plan, channel, preference.identity, preference)
        for error in parsed.errors:
            code, _ = schemas.first_error([error])
            ERRORS.labels(str(code)).inc()
            tally.items += 1

    async def _prefetch(self, items: list[Item]) -> None:
        """A few queries for the whole batch instead of a few per update: which messages exist,
        which are awaited by earlier reactions/edits/revokes, who the people are, and their
        open conversations."""
        by_number: dict[str, list[str]] = defaultdict(list)
        people: dict[int, list[Identity]] = defaultdict(list)
        channels: dict[int, set[int]] = defaultdict(set)
        for item in items:
            if item.channel is None or isinstance(item.payload, StatusUpdate):
                continue
            if isinstance(item.payload, InboundMessage):
                by_number[item.channel.phone_number_id].append(item.payload.wamid)
            people[item.channel.workspace_id].append(item.identity)
            channels[item.channel.workspace_id].add(item.channel.id)
        for number, wamids in by_number.items():
            await self.messages.prefetch(number, wamids)
        for ws, identities in people.items():
            # their contacts, and the returning and new people's keys in one key-store trip
            known = await self.contacts.prefetch(ws, identities)
            await self.conversations.prefetch(known, sorted(channels[ws]))

    # -- applying -----------------------------------------------------------------------------
    async def _handle(self, item: Item) -> None:
        payload = item.payload
        if isinstance(payload, Change):
            await templates.record(self.db, payload, item.workspace_id)
            ITEMS.labels("template").inc()
            return
        assert item.channel is not None
        if isinstance(payload, InboundMessage):
            await self._message(item.channel, payload)
        elif isinstance(payload, StatusUpdate):
            self._statuses.setdefault(item.channel.id, (item.channel, []))[1].append(payload)
        else:
            await self._preference(item.channel, payload)

    async def _message(self, channel: Channel, message: InboundMessage) -> None:
        ws = channel.workspace_id
        if self.messages.is_known(channel.phone_number_id, message.wamid):
            self._stats[ws]["duplicates"] += 1
            ITEMS.labels("duplicate").inc()
            return
        contact = await self.contacts.resolve(ws, message.sender, message.profile)
        if contact is None:  # neither phone nor BSUID: nobody to attribute it to
            self._stats[ws]["unattributed"] += 1
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
        if not await self.messages.prepare_inbound(channel, contact, conversation, message, at):
            self._stats[ws]["duplicates"] += 1
            ITEMS.labels("duplicate").inc()
            return
        self.conversations.record_message(
            conversation, at, inbound=True, opens_window=message.opens_window
        )
        if message.opens_window:
            self.contacts.touch_inbound(contact, at)
        await self.keywords.note(channel, contact, conversation, message)
        await privacy_chat.on_inbound(self.db, channel, contact, message)

    async def _flush_messages(self) -> None:
        stored = await self.messages.flush_inbound()
        for ws, conversation_id, message_id in stored:
            self.outcome.message_ids[ws].append(message_id)
            self.outcome.messages[ws].append((message_id, conversation_id, "in"))
            self.outcome.conversation_ids[ws].add(conversation_id)
            self._stats[ws]["messages"] += 1
        if stored:
            ITEMS.labels("message").inc(len(stored))

    async def _preference(self, channel: Channel, preference: PreferenceUpdate) -> None:
        ws = channel.workspace_id
        contact = await self.contacts.resolve(ws, preference.identity, preference.profile)
        if contact is None:
            self._stats[ws]["unattributed"] += 1
            return
        await self.contacts.record_preference(
            contact,
            channel.id,
            preference.category,
            preference.value,
            preference.detail,
            preference.occurred_at,
        )
        self._stats[ws]["preferences"] += 1
        ITEMS.labels("preference").inc()

    async def _audit(self) -> None:
        """One audit entry per workspace per batch, with ids and counts: the contacts created
        and the conversations written to (each contact change or merge has its own entry)."""
        for ws, created in self.contacts.created.items():
            if created:
                self._stats[ws]["contacts_created"] += len(created)
        for ws, stats in self._stats.items():
            data: dict[str, Any] = {k: v for k, v in stats.items() if v}
            if self.contacts.created.get(ws):
                data["contacts_created_ids"] = self.contacts.created[ws]
            conversations = sorted(self.outcome.conversation_ids.get(ws, set()))
            if conversations:
                data["conversations"] = conversations
            if data:
                await audit.record(
                    self.db,
                    actor="system",
                    action="whatsapp.inbound_stored",
                    workspace_id=ws,
                    data=data,
                )
