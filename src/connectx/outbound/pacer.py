"""The per-number pacer: claim outbox rows ahead, send them at the number's rate through the
shared aiohttp pool, record each outcome (fenced on the claim) in bulk.

* A pipeline per number: claiming (one ``UPDATE … RETURNING``), sending and recording overlap, so
  the pool never waits on the database; one recorder writes every number's answers together.
* Pacing, never raise-and-retry: a GCRA schedule per number (``rate_per_s``, 80 by default, up
  to 1,000) decides when each request may leave, every slot due taken per tick; across processes
  the schedule and the pair rates live in Redis when ``CONNECTX_REDIS_URL`` is set (one Lua call
  per tick and number), otherwise in this process.
* The per-recipient pair rate (burst 5, then one per 6 s, per number) defers a row instead of
  sending it.
* Retries by Meta's error class (``classify``); 190 pauses the number and tells its owners.
* Runs as a thread of ``connectx serve`` (embedded) and of every ``connectx worker``; two
  claimers never take the same row (``FOR UPDATE SKIP LOCKED`` / SQLite's write lock). The claim
  is committed before the Graph call. A row whose claimer died is *in doubt* (Meta may have it):
  a status callback carrying its ``biz_opaque_callback_data`` settles it as sent; only when none
  arrived within ``outbox_settle_s`` after the lease is it sent again (docs/outbound.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.channels import service as channels
from connectx.config import get_settings
from connectx.db.engine import dispose_engines
from connectx.db.session import read_only, unit_of_work
from connectx.intake.pressure import busy
from connectx.kit import clock
from connectx.kit.collector import quiet_garbage_collector
from connectx.messages import repository as messages_repo
from connectx.messages import service as messages
from connectx.models.message import STATUS_RANK
from connectx.outbound import graph, wakeup
from connectx.outbound import repository as repo
from connectx.outbound.service import DEFAULT_RATE, PAYLOAD
from connectx.privacy import consent
from connectx.privacy.requests import notices
from connectx.privacy.vault import KeyDestroyed, Vault
from connectx.realtime import sent as realtime_hooks

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0
PAIR_BURST = 5
PAIR_INTERVAL_S = 6.0
POLL_S = 0.25
# ... and while the web process's intake is saturated (intake/pressure.py): a scan is a few
# trips to the database thread, each taking the GIL from the loop answering Meta's webhooks.
# A send committed in this process still wakes the pacer at once.
BUSY_POLL_S = 1.0
MAX_INFLIGHT = 256  # requests in flight per process (the size of the shared pool)
RECONCILE_PAGE = 1000  # rows in doubt settled per transaction
BURST_S = 0.1  # a number's schedule lets a sender that fell this far behind catch up
TICK_S = 0.005  # the sender wakes at most this often and takes every slot due
# Claimed rows kept ready per number: this many seconds of what it actually sends and up to
# twice that (claimed up to twice, claimed again at half; its rate at most), the seconds at most
# an eighth of the lease, so a row waits at most a quarter of it at the measured pace; a claimed
# row not sent half its lease (at most LEASE_MARGIN_S) before the lease ends is put back unsent.
AHEAD_S = 1.0
PACE_S = 0.5  # a number's sending pace is measured over at least this long
CLAIM_MIN = 16
CLAIM_MAX = 1000
LEASE_MARGIN_S = 30.0
FLUSH_S = 0.1  # answers are recorded at most once per this interval (or per FLUSH_MAX)
FLUSH_MAX = 1000
SCAN_BUSY_S = 1.0  # while numbers are sending, look for other numbers' rows this often

RETRY = {4, 80007, 130429, 131056, 131057, 131016, 131000, 2}
TOKEN_INVALID = {190, 104}
OPTED_OUT = 131050


def classify(code: int | None, http_status: int) -> str:
    """``retry``, ``token`` (pause the number) or ``final`` for a Graph error."""
    if code in TOKEN_INVALID:
        return "token"
    if code in RETRY or http_status >= 500 or http_status in (0, 429):
        return "retry"  # (429: too many requests, whatever code came with it: not processed)
    return "final"


def backoff(attempt: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1)


class Schedule:
    """One number's pacing in this process: a GCRA schedule for the number (virtual scheduling:
    the next slot is ``tat``; a sender that fell behind may catch up by ``BURST_S``) and the
    pair rate per recipient (burst 5, then one per 6 s), decided together for a few rows at a
    time so that the sender wakes once per tick, not once per message."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.step = 1.0 / rate
        self.tat = 0.0
        self.pairs: dict[str, float] = {}

    async def admit(self, recipients: list[str]) -> tuple[list[float], float]:
        """Decide, in order, for the rows going to ``recipients`` until the number has no slot
        left now: 0.0 = send now (takes a slot), > 0 = the pair rate defers it that many seconds
        (takes no slot). Rows past the returned decisions wait; the second value is how long
        until the number's next slot (<= 0: free now)."""
        now = time.monotonic()
        at = max(now - BURST_S, self.tat)
        allowance = (PAIR_BURST - 1) * PAIR_INTERVAL_S
        out: list[float] = []
        for key in recipients:
            if at > now:
                break
            pair = max(now, self.pairs.get(key, now))
            if pair - now > allowance:
                out.append(pair - now - allowance)
                continue
            self.pairs[key] = pair + PAIR_INTERVAL_S
            out.append(0.0)
            at += self.step
        self.tat = at
        if len(self.pairs) > 100_000:
            self.pairs = {k: v for k, v in self.pairs.items() if v > now}
        return out, at - now


# The same decisions in Redis, shared by every process: KEYS[1] is the number's schedule,
# KEYS[2..] the pair keys of the candidate rows in order (ARGV: now, step, burst, pair interval,
# pair allowance). Returns the wait until the number's next slot, then one decision per row
# decided ("0" send now, else the pair rate's deferral in seconds).
_LUA = """
local now = tonumber(ARGV[1])
local step = tonumber(ARGV[2])
local interval = tonumber(ARGV[4])
local allowance = tonumber(ARGV[5])
local at = math.max(now - tonumber(ARGV[3]), tonumber(redis.call('GET', KEYS[1]) or '0'))
local out = {}
for i = 2, #KEYS do
  if at > now then break end
  local pair = math.max(now, tonumber(redis.call('GET', KEYS[i]) or '0'))
  if pair - now > allowance then
    out[#out + 1] = tostring(pair - now - allowance)
  else
    local ttl = math.ceil((pair + interval - now) * 1000) + 1000
    redis.call('SET', KEYS[i], tostring(pair + interval), 'PX', ttl)
    out[#out + 1] = '0'
    at = at + step
  end
end
redis.call('SET', KEYS[1], tostring(at), 'PX', 60000)
table.insert(out, 1, tostring(at - now))
return out
"""


class RedisSchedule(Schedule):
    """The same schedule and pair rates shared by every process through Redis (one Lua call
    per tick and number): one number's pacing and each recipient's pair rate hold across
    workers."""

    def __init__(self, client: Any, prefix: str, channel_id: int, rate: int) -> None:
        super().__init__(rate)
        self.script = client.register_script(_LUA)
        self.key = f"{prefix}:pace:{channel_id}"
        self.pair_prefix = f"{prefix}:pair:{channel_id}:"

    async def admit(self, recipients: list[str]) -> tuple[list[float], float]:
        keys = [self.key, *(self.pair_prefix + r for r in recipients)]
        allowance = (PAIR_BURST - 1) * PAIR_INTERVAL_S
        args = [time.time(), self.step, BURST_S, PAIR_INTERVAL_S, allowance]
        answer = await self.script(keys=keys, args=args)
        return [float(v) for v in answer[1:]], float(answer[0])


@dataclass(slots=True)
class Claimed:
    """A claimed outbox row (see ``repository.CLAIMED``) and its decrypted Graph body."""

    id: int
    workspace_id: int
    channel_id: int
    contact_id: int
    message_id: int | None
    kind: str
    recipient_key: str
    payload_enc: bytes | None
    attempts: int
    lease_until: datetime
    claim: str
    body: bytes | None


@dataclass(slots=True)
class Outcome:
    row: Claimed
    wamid: str | None = None
    code: int | None = None
    title: str | None = None
    kind: str = "sent"  # sent | retry | token | final | deferred
    defer_s: float = 0.0


@dataclass
class Lane:
    """What one number's sender knows from its latest claim."""

    channel_id: int
    endpoint: graph.Messages | None = None  # the number's /messages with its current token
    rate: int = DEFAULT_RATE
    schedule: Schedule | None = None
    stopped: bool = False  # Meta refused the token: send nothing more from what is claimed
    inflight: int = 0  # its requests started and not answered
    started: int = 0  # requests started since ``since``
    since: float = 0.0  # when the current measurement of the pace began (monotonic)
    pace: float | None = None  # requests started per second, smoothed

    def pace_now(self, now: float) -> float:
        """Requests this number started per second lately: once it has sent, measured over at
        least PACE_S (a shorter window took one burst of admissions for the rate: 10-1,200/s
        for a number sending 250/s), half the previous figure and half the new one."""
        elapsed = now - self.since
        if self.pace and elapsed < PACE_S:
            return self.pace
        measured = self.started / max(elapsed, 0.05)
        self.pace = (self.pace + measured) / 2 if self.pace else measured
        self.started, self.since = 0, now
        return self.pace


class Pacer:
    """One process's sender (one event loop): per number, a pipeline that keeps claimed rows
    ready ahead of the schedule, releases them at the number's rate into the shared aiohttp
    pool, and hands the answers to one recorder that writes them in bulk. Claiming and recording
    run beside sending, so the pool never waits on the database."""

    def __init__(self, max_inflight: int = MAX_INFLIGHT) -> None:
        self.max_inflight = max_inflight
        self.claimer = secrets.token_hex(4)
        self.schedules: dict[int, Schedule] = {}
        self.channel_tasks: dict[int, asyncio.Task[None]] = {}
        self._redis: Any = None
        self.sent = 0
        # Admitted rows wait here for one of this process's sender coroutines (at most
        # ``max_inflight``, started as needed): a message costs no task of its own.
        self.queued: deque[tuple[Lane, Claimed]] = deque()
        self.busy = 0  # requests in flight
        self._senders: list[asyncio.Task[None]] = []
        self._idle: deque[asyncio.Future[None]] = deque()  # senders waiting for a row
        self._room = asyncio.Event()  # set whenever a request ends (drain waits on it)
        self._room.set()
        # Numbers sending now: while several are, each has at most its share of the places in
        # flight (one event woke them all and the first to have waited took every free place,
        # every time: at ~3,000/s on ten numbers the last ones were held back until their
        # claimed rows neared the end of their lease and went back unsent, 13-26 % of the rows
        # claimed twice; docs/outbound.md).
        self.sending = 0
        self._blocked = 0  # numbers waiting for a place in flight
        self.outcomes: list[Outcome] = []
        self._recorder: asyncio.Task[None] | None = None
        self._flushed = 0.0
        self.closing = False
        self._scanned = 0.0
        self.margin = timedelta(seconds=min(LEASE_MARGIN_S, get_settings().outbox_lease_s / 2))
        # A claim whose lease ended before this moment is sent again: every webhook received up
        # to ``outbox_settle_s`` after its lease was processed, and none named its callback data.
        self.stale = datetime.min.replace(tzinfo=UTC)
        # SQLite admits one writer at a time: this process's claims and recordings take turns
        # here instead of in SQLite's busy handler (which sleeps) and on extra pool connections.
        self._serial = asyncio.Lock() if get_settings().is_sqlite else None

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A unit of work of this sender (one at a time on SQLite)."""
        if self._serial is None:
            async with unit_of_work() as db:
                yield db
            return
        async with self._serial, unit_of_work() as db:
            yield db

    def _schedule(self, channel_id: int, rate: int) -> Schedule:
        found = self.schedules.get(channel_id)
        if found is not None and found.rate == rate:
            return found
        settings = get_settings()
        if settings.redis_url:
            if self._redis is None:
                import redis.asyncio as aioredis

                self._redis = aioredis.from_url(settings.redis_url)
            found = RedisSchedule(self._redis, settings.redis_prefix, channel_id, rate)
        else:
            found = Schedule(rate)
        self.schedules[channel_id] = found
        return found

    async def tick(self) -> int:
        """Start a sender for every number with due rows; how many numbers are busy."""
        busy = [c for c, t in self.channel_tasks.items() if not t.done()]
        if busy and time.monotonic() - self._scanned < SCAN_BUSY_S:
            return len(busy)  # running senders claim on their own; look for new numbers less often
        self._scanned = time.monotonic()
        now = clock.now()
        # One read-only transaction per pass (an idle worker makes four a second): the webhook
        # horizon, rows in doubt that a status callback settles (usually none), numbers with due
        # rows. Rows in doubt are settled before any sender starts. The horizon is read FIRST:
        # the reads after it may see a newer state, never an older one (PostgreSQL's READ
        # COMMITTED takes a snapshot per statement; SQLite takes one per file, the events file's
        # when it is first read), and an event seen processed has its effects committed before
        # (the processor marks events done after, or with, their effects). Read the other way
        # round, a status callback processed between the two reads was missed by the first and
        # counted by the second: its row in doubt was sent again (a duplicate at Meta).
        async with read_only() as db:
            horizon = await repo.webhooks_processed_until(db, now)
            settle = bool(await repo.confirmed_in_doubt(db, now, 1))
            stale = horizon - timedelta(seconds=get_settings().outbox_settle_s)
            due = await repo.due_channels(db, now, stale, skip=busy)
        if settle:
            await self.reconcile()
        # Published for the claims only now: a number's sender runs beside this pass and claims
        # with it, and a row whose callback settles it was claimable by the new horizon while
        # the settling was still being written (sent twice on a loaded machine).
        self.stale = stale
        for channel_id in due:
            task = self.channel_tasks.get(channel_id)
            if task is None or task.done():
                self.channel_tasks[channel_id] = asyncio.create_task(self.run_channel(channel_id))
        return len([t for t in self.channel_tasks.values() if not t.done()])

    async def reconcile(self) -> int:
        """Settle rows in doubt that Meta's status callbacks prove were sent (their sender died
        between Meta's answer and recording it): all of them, a page a transaction, before the
        pass lets claims use its horizon. How many were settled."""
        now = clock.now()
        async with read_only() as db:  # usually none: looked for without the write lock
            if not await repo.confirmed_in_doubt(db, now, 1):
                return 0
        settled = 0
        while True:
            async with self._writing() as db:
                found = await repo.confirmed_in_doubt(db, now, RECONCILE_PAGE)
                if found:
                    await self._settle(db, found, now)
            settled += len(found)
            if len(found) < RECONCILE_PAGE:  # (a settled row is no longer in doubt)
                break
        if settled:
            log.info("outbox: %s rows in doubt settled as sent by their status callbacks", settled)
        return settled

    @staticmethod
    async def _settle(db: AsyncSession, found: list[Any], now: datetime) -> None:
        await repo.reconciled(
            db,
            [{"p_id": r.id, "p_token": r.claim_token, "wamid": r.wamid, "at": now} for r in found],
        )
        accepted = [(r.message_id, r.wamid) for r in found if r.message_id]
        await repo.messages_accepted(db, now, accepted)
        await _apply_early_statuses(db, accepted)
        await realtime_hooks.outbound_recorded(
            db, [(r.workspace_id, r.message_id) for r in found if r.message_id]
        )

    async def run_channel(self, channel_id: int) -> None:
        """Send this number's due rows until none is due: claims run beside sending (the next
        one starts while half a second of rows is still ready), sends leave at the schedule's
        pace, each tick taking every slot due."""
        lane = Lane(channel_id)
        ahead_s = min(AHEAD_S, get_settings().outbox_lease_s / 8)
        ready: deque[Claimed] = deque()
        claiming: asyncio.Task[list[Claimed]] | None = None
        drained = False  # the last claim found nothing due
        target = CLAIM_MIN
        self.sending += 1
        try:
            while not self.closing and not lane.stopped:
                if claiming is None and not drained and len(ready) <= target // 2:
                    # Sized on what left since the last claim: a number slower than its rate
                    # (a busy machine, a slow Graph) does not hold rows it cannot send in time.
                    pace = lane.pace_now(time.monotonic())
                    nominal = max(1, min(CLAIM_MAX, int(lane.rate * ahead_s)))
                    target = max(min(nominal, CLAIM_MIN), min(nominal, int(2 * pace * ahead_s)))
                    if target > len(ready):
                        claiming = asyncio.create_task(self._claim(lane, target - len(ready)))
                if claiming is not None and (claiming.done() or not ready):
                    rows = await claiming
                    claiming = None
                    ready.extend(rows)
                    drained = not rows
                    continue
                if not ready:
                    return
                await self._admit(lane, ready)
        except Exception as exc:
            log.warning("sender for channel %s stopped: %s", channel_id, type(exc).__name__)
        finally:
            self.sending -= 1
            self._room.set()  # the others' shares grow
            if claiming is not None:
                try:
                    ready.extend(await claiming)
                except Exception as exc:
                    log.warning("claim for channel %s failed: %s", channel_id, type(exc).__name__)
            # Claimed but not sent (stopping, token refused, an error): pending again at once.
            for row in ready:
                self._add(Outcome(row, kind="deferred"))

    async def _admit(self, lane: Lane, ready: deque[Claimed]) -> None:
        """Release the rows at the head of ``ready`` whose time has come; sleep until the next
        slot when none has."""
        room = await self._room_for(lane)
        now = clock.now()
        while ready and (ready[0].kind != "message" or ready[0].body is None):
            row = ready.popleft()  # reads (not paced) and erased content (nothing to send)
            self._start(lane, row, now)
        head: list[Claimed] = []
        cap = min(room, 1 + int(lane.rate * (BURST_S + TICK_S)))
        for row in ready:
            if len(head) >= cap or row.kind != "message" or row.body is None:
                break
            head.append(row)
        if not head:
            return
        assert lane.schedule is not None
        decisions, wait = await lane.schedule.admit([r.recipient_key for r in head])
        for row, defer_s in zip(head, decisions, strict=False):
            ready.popleft()
            if defer_s > 0:
                self._add(Outcome(row, kind="deferred", defer_s=defer_s))
            else:
                self._start(lane, row, now)
        if wait > 0 or len(decisions) < len(head):
            await asyncio.sleep(max(wait, TICK_S))

    async def _room_for(self, lane: Lane) -> int:
        """How many requests this number may start now: the free places in flight, and while
        other numbers wait for a place, no more than its share of them (a number alone, or
        beside slower ones, may use every place)."""
        blocked = False
        try:
            while True:
                room = self.max_inflight - self.inflight
                if self._blocked > blocked:  # others are waiting too
                    share = -(-self.max_inflight // max(1, self.sending))
                    room = min(room, share - lane.inflight)
                if room > 0:
                    return room
                if not blocked:
                    blocked = True
                    self._blocked += 1
                self._room.clear()
                await self._room.wait()
        finally:
            if blocked:
                self._blocked -= 1

    @property
    def inflight(self) -> int:
        """Requests started or waiting for a sender (what ``max_inflight`` bounds)."""
        return self.busy + len(self.queued)

    def _start(self, lane: Lane, row: Claimed, now: datetime) -> None:
        if row.lease_until - now < self.margin:
            # Its lease ends before an answer could be recorded: put it back unsent.
            self._add(Outcome(row, kind="deferred"))
            return
        lane.started += 1
        lane.inflight += 1
        self.queued.append((lane, row))
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if len(self._senders) < self.max_inflight:
            self._senders.append(asyncio.create_task(self._sender()))

    async def _sender(self) -> None:
        """One of this process's sender coroutines: sends admitted rows one at a time."""
        loop = asyncio.get_running_loop()
        while True:
            if not self.queued:
                waiter = loop.create_future()
                self._idle.append(waiter)
                await waiter
                continue
            lane, row = self.queued.popleft()
            self.busy += 1
            try:
                if lane.stopped:  # Meta refused the number's token meanwhile: not sent
                    self._add(Outcome(row, kind="deferred"))
                else:
                    await self._send_one(lane, row)
            except Exception as exc:  # never lose a row: it stays claimed (in doubt)
                log.warning("outbox: sending a row failed: %s", type(exc).__name__)
            finally:
                self.busy -= 1
                lane.inflight -= 1
                self._room.set()

    async def _claim(self, lane: Lane, limit: int) -> list[Claimed]:
        async with self._writing() as db:
            view = await repo.sender_view(db, lane.channel_id)
            lane.rate = (view.rate_per_s if view else None) or DEFAULT_RATE
            lane.schedule = self._schedule(lane.channel_id, lane.rate)
            if view is None or view.paused_at is not None or view.disconnected_at is not None:
                return []
            token = await channels.open_access_token(
                db, view.workspace_id, lane.channel_id, view.access_token_enc
            )
            if not token:
                return []
            endpoint = lane.endpoint
            if endpoint is None or (endpoint.phone_number_id, endpoint.token) != (
                view.phone_number_id,
                token,
            ):
                lane.endpoint = graph.Messages(view.phone_number_id, token)
            now = clock.now()
            claim = f"{self.claimer}{secrets.token_hex(4)}"
            lease = timedelta(seconds=get_settings().outbox_lease_s)
            lease_until = now + lease
            rows = await repo.claim(db, lane.channel_id, now, self.stale, lease_until, claim, limit)
            vault = Vault(db)
            out = []
            for r in rows:
                subject = messages.subject_of(r.contact_id)
                body = None
                try:
                    if r.payload_enc is not None:
                        body = await vault.decrypt_bytes(
                            r.workspace_id, subject, PAYLOAD, r.payload_enc
                        )
                except KeyDestroyed:  # the contact was erased meanwhile: nothing to send
                    pass
                out.append(
                    Claimed(
                        r.id,
                        r.workspace_id,
                        r.channel_id,
                        r.contact_id,
                        r.message_id,
                        r.kind,
                        r.recipient_key,
                        r.payload_enc,
                        r.attempts,
                        lease_until,
                        claim,
                        body,
                    )
                )
        return out

    async def _send_one(self, lane: Lane, row: Claimed) -> None:
        if row.body is None:
            self._add(Outcome(row, kind="final", code=None, title="content erased"))
            return
        assert lane.endpoint is not None  # set by the claim that took the row
        try:
            answer = await lane.endpoint.send(row.body)
        except graph.GraphError as exc:
            if exc.in_doubt:
                # Meta may have accepted it (the answer timed out or the connection dropped):
                # not retried at once, which would send it twice. The row stays claimed, in
                # doubt once its lease ends, settled by its status callback or sent again only
                # after the settle time, as after a crash (docs/outbound.md).
                log.warning("outbox: no answer to a send (%s): in doubt", exc.title)
                return
            kind = classify(exc.code, exc.http_status)
            if kind == "token":
                lane.stopped = True
            self._add(Outcome(row, code=exc.code, title=exc.title, kind=kind))
            return
        wamid = ((answer.get("messages") or [{}])[0]).get("id")
        self._add(Outcome(row, wamid=str(wamid) if wamid else None))

    # -- recording: one transaction for every answer of the last FLUSH_S, all numbers ---------
    def _add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_loop())

    async def _record_loop(self) -> None:
        """Record what has answered: at once after a quiet spell (so a status callback rarely
        beats the wamid), then at most every FLUSH_S while answers keep coming (bulk)."""
        while self.outcomes:
            wait = self._flushed + FLUSH_S - time.monotonic()
            if wait > 0 and len(self.outcomes) < FLUSH_MAX and not self.closing:
                await asyncio.sleep(wait)
            self._flushed = time.monotonic()
            batch, self.outcomes = self.outcomes, []
            for attempt in range(3):
                try:
                    await self._record(batch)
                    break
                except Exception as exc:  # the rows stay claimed: in doubt after their lease
                    log.warning("outbox: recording outcomes failed: %s", type(exc).__name__)
                    await asyncio.sleep(0.5 * (attempt + 1))

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Stop sending, let the requests in flight answer, record everything."""
        self.closing = True
        tasks = [t for t in self.channel_tasks.values() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)
        deadline = time.monotonic() + timeout_s
        while self.inflight and time.monotonic() < deadline:
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), deadline - time.monotonic())
        for task in self._senders:
            task.cancel()
        if self._recorder is not None:
            await asyncio.wait([self._recorder], timeout=timeout_s)

    async def _record(self, outcomes: list[Outcome]) -> None:
        now = clock.now()
        sent: list[tuple[int, str, str | None]] = []
        finish: dict[str, list[dict[str, Any]]] = {"pending": [], "failed": []}
        accepted: list[tuple[int, str]] = []
        failed: list[Outcome] = []
        paused: dict[int, Outcome] = {}
        opted_out: list[Claimed] = []
        for o in outcomes:
            row = o.row
            if o.kind == "sent":
                sent.append((row.id, row.claim, o.wamid))
                if row.message_id is not None and o.wamid:
                    accepted.append((row.message_id, o.wamid))
                continue
            p: dict[str, Any] = {"p_id": row.id, "p_token": row.claim, "updated_at": now}
            p.update(error_code=o.code, error_title=o.title)
            if o.kind == "deferred" or o.kind == "token":
                again = now + timedelta(seconds=o.defer_s)
                p.update(attempts=row.attempts - 1, next_attempt_at=again)
                finish["pending"].append(p)
                if o.kind == "token":
                    paused[row.channel_id] = o
            elif o.kind == "retry" and row.attempts < MAX_ATTEMPTS:
                p.update(
                    attempts=row.attempts,
                    next_attempt_at=now + timedelta(seconds=backoff(row.attempts)),
                )
                finish["pending"].append(p)
            else:
                finish["failed"].append(p)
                failed.append(o)
                if o.code == OPTED_OUT:
                    opted_out.append(row)
        async with self._writing() as db:
            concurrent = db.get_bind().dialect.name == "postgresql"
            await repo.finish_sent(db, now, sent)
            for status, params in finish.items():
                await repo.finish(db, status, params)
            await repo.messages_accepted(db, now, accepted)
            await _apply_early_statuses(db, accepted)
            for o in failed:
                if o.row.message_id is None:
                    continue
                message = await messages_repo.by_id(db, o.row.message_id)
                if message is not None:
                    await messages_repo.advance_status(
                        db,
                        message,
                        "failed",
                        STATUS_RANK["failed"],
                        now,
                        o.code,
                        (o.title or "")[:200] or None,
                    )
            # A privacy notice among them goes on its request's timeline (notices.on_failed).
            await notices.on_failed(
                db,
                [
                    (o.row.message_id, None, notices.GAVE_UP)
                    if o.kind == "retry"
                    else (o.row.message_id, o.code, o.title)
                    for o in failed
                    if o.row.message_id is not None
                ],
            )
            for row in opted_out:
                await consent.record(
                    db,
                    subject=f"contact:{row.contact_id}",
                    workspace_id=row.workspace_id,
                    purpose="marketing",
                    channel="whatsapp",
                    granted=False,
                    source="whatsapp_error_131050",
                    wording="Meta error 131050: the user stopped marketing messages.",
                    notice_version="meta",
                    actor="system:outbound",
                )
            for channel_id, o in paused.items():
                await _pause(db, channel_id, o)
            await realtime_hooks.outbound_recorded(
                db,
                [
                    (o.row.workspace_id, o.row.message_id)
                    for o in outcomes
                    if o.row.message_id is not None and (o.kind == "sent" or o in failed)
                ],
            )
        if accepted and concurrent:
            # On PostgreSQL a callback stored by a processor transaction that overlapped ours
            # saw neither our wamid nor was seen by us: look again now that ours is committed.
            async with unit_of_work() as db:
                await _apply_early_statuses(db, accepted, publish=True)
        self.sent += len(accepted)
        if paused:
            for channel_id in paused:
                self.schedules.pop(channel_id, None)


async def _apply_early_statuses(
    db: Any, accepted: list[tuple[int, str]], *, publish: bool = False
) -> None:
    """Status callbacks can beat the API answer: apply what was recorded before the wamid (one
    query finds the few messages concerned). ``accepted``: (message id, wamid) each. Inside the
    transaction that records the sends, their status is published with them; the look after
    its commit (``publish``) publishes what it applied itself."""
    if not accepted:
        return
    early = await repo.wamids_with_statuses(db, [wamid for _, wamid in accepted])
    if not early:
        return
    ids = [message_id for message_id, wamid in accepted if wamid in early]
    found = await repo.messages_by_ids(db, ids)
    if publish:
        await messages.apply_late_statuses(db, found)
    else:
        await messages.apply_recorded_statuses(db, found)


async def _pause(db: Any, channel_id: int, outcome: Outcome) -> None:
    """190: Meta refused the token. Pause the number's sends and tell the workspace's owners."""
    from connectx.models.channel import Channel

    channel = await db.get(Channel, channel_id)
    if channel is None:
        return
    now = clock.now()
    state = await repo.ensure_sending_state(db, channel_id, channel.workspace_id, DEFAULT_RATE, now)
    if state.paused_at is not None:
        return
    state.paused_at = now
    state.pause_reason = "token_invalid"
    state.pause_code = outcome.code
    state.updated_at = now
    await audit.record(
        db,
        actor="system:outbound",
        action="channel.sending_paused",
        subject=f"channel:{channel_id}",
        workspace_id=channel.workspace_id,
        data={"code": outcome.code or 0, "reason": "token_invalid"},
    )
    from connectx.mail import service as mail
    from connectx.security import repository as security_repo
    from connectx.security.service import _person

    for owner_id in await security_repo.owners_of(db, channel.workspace_id):
        person = await _person(db, owner_id)
        if person is None:
            continue
        await mail.send(
            db,
            to=person[0],
            subject="WhatsApp sending paused: the number's access token was refused",
            body=(
                f"Hello {person[1]},\n\nMeta refused the access token of the WhatsApp number "
                f"{channel.display_phone_number} (error 190: expired or invalid). Messages to "
                "it are kept and will be sent once you reconnect the number with a valid token "
                "and resume sending (workspace settings or PUT /api/v1/channels/"
                f"{channel.id}/sending with resume=true).\n"
            ),
            kind="channel_token_invalid",
            subject_ref=f"user:{owner_id}",
            user_id=owner_id,
        )


async def run_forever(stopping: threading.Event, poll_s: float = POLL_S) -> None:
    pacer = Pacer()
    try:
        while not stopping.is_set():
            try:
                await pacer.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox pass failed: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
            await asyncio.to_thread(wakeup.wait, max(poll_s, BUSY_POLL_S) if busy() else poll_s)
        await pacer.drain()
    finally:
        await graph.close()


class PacerThread:
    """The pacer on its own thread and event loop (and so its own database engine)."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        quiet_garbage_collector()
        self._thread = threading.Thread(target=self._main, name="outbox-pacer", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        async def main() -> None:
            try:
                await run_forever(self._stopping, self.poll_s)
            finally:
                await dispose_engines()

        asyncio.run(main())

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stopping.set()
        wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None


_embedded: PacerThread | None = None


def start_embedded() -> None:
    global _embedded
    settings = get_settings()
    if _embedded is not None or settings.broker_url or not settings.embedded_worker:
        return
    _embedded = PacerThread()
    _embedded.start()


def stop_embedded() -> None:
    global _embedded
    thread, _embedded = _embedded, None
    if thread is not None:
        thread.stop()
