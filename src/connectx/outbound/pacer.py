"""The per-number pacer: claim outbox rows in batches, send them at the number's rate through
the shared aiohttp pool, record each outcome (fenced on the claim).

* Pacing, never raise-and-retry: a GCRA schedule per number (``rate_per_s``, 80 by default, up
  to 1,000) decides when each request may leave; across processes the schedule lives in Redis
  when ``CONNECTX_REDIS_URL`` is set (one Lua call per send), otherwise in this process.
* The per-recipient pair rate (burst 5, then one per 6 s) defers a row instead of sending it.
* Retries by Meta's error class (``classify``); 190 pauses the number and tells its owners.
* Runs as a thread of ``connectx serve`` (embedded) and of every ``connectx worker``; two
  claimers never take the same row (``FOR UPDATE SKIP LOCKED`` / SQLite's write lock). The claim
  is committed before the Graph call. A row whose claimer died is *in doubt* (Meta may have it):
  a status callback carrying its ``biz_opaque_callback_data`` settles it as sent; only when none
  arrived within ``outbox_settle_s`` after the lease is it sent again (docs/outbound.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectx.audit import service as audit
from connectx.channels import service as channels
from connectx.config import get_settings
from connectx.db.engine import dispose_engines
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.messages import repository as messages_repo
from connectx.messages import service as messages
from connectx.models.message import STATUS_RANK
from connectx.models.outbox import OutboxMessage
from connectx.outbound import graph, wakeup
from connectx.outbound import repository as repo
from connectx.outbound.service import DEFAULT_RATE, PAYLOAD
from connectx.privacy import consent
from connectx.privacy.vault import Vault
from connectx.realtime import sent as realtime_hooks

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0
PAIR_BURST = 5
PAIR_INTERVAL_S = 6.0
POLL_S = 0.25

RETRY = {4, 80007, 130429, 131056, 131057, 131016, 131000, 2}
TOKEN_INVALID = {190, 104}
OPTED_OUT = 131050


def classify(code: int | None, http_status: int) -> str:
    """``retry``, ``token`` (pause the number) or ``final`` for a Graph error."""
    if code in TOKEN_INVALID:
        return "token"
    if code in RETRY or http_status >= 500 or http_status == 0:
        return "retry"
    return "final"


def backoff(attempt: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1)


class Gcra:
    """When may the next request leave? Virtual scheduling with a small burst allowance."""

    def __init__(self, rate: float, burst_s: float = 0.01) -> None:
        self.rate = rate
        self.burst_s = burst_s
        self.tat = 0.0

    async def take(self) -> None:
        now = time.monotonic()
        at = max(now - self.burst_s, self.tat)
        self.tat = at + 1.0 / self.rate
        if at > now:
            await asyncio.sleep(at - now)


_LUA = """
local now = tonumber(ARGV[1])
local step = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now - burst, tat)
redis.call('SET', KEYS[1], tostring(at + step), 'PX', 60000)
return tostring(at - now)
"""


class RedisGcra(Gcra):
    """The same schedule shared by every process through Redis (one number, one bucket)."""

    def __init__(self, client: Any, key: str, rate: float) -> None:
        super().__init__(rate)
        self.client = client
        self.key = key

    async def take(self) -> None:
        wait = float(
            await self.client.eval(_LUA, 1, self.key, time.time(), 1.0 / self.rate, self.burst_s)
        )
        if wait > 0:
            await asyncio.sleep(wait)


class PairRate:
    """Per recipient: a burst of 5, then one message per 6 s (Meta's pair rate, 131056)."""

    def __init__(self) -> None:
        self.tat: dict[str, float] = {}

    def wait_for(self, key: str) -> float:
        now = time.monotonic()
        tat = max(now, self.tat.get(key, now))
        allowance = (PAIR_BURST - 1) * PAIR_INTERVAL_S
        if tat - now > allowance:
            return tat - now - allowance
        self.tat[key] = tat + PAIR_INTERVAL_S
        if len(self.tat) > 100_000:
            self.tat = {k: v for k, v in self.tat.items() if v > now}
        return 0.0


@dataclass
class Outcome:
    row: OutboxMessage
    wamid: str | None = None
    code: int | None = None
    title: str | None = None
    kind: str = "sent"  # sent | retry | token | final | deferred
    defer_s: float = 0.0


class Pacer:
    """One process's sender (one event loop)."""

    def __init__(self, batch_max: int = 250) -> None:
        self.batch_max = batch_max
        self.claimer = secrets.token_hex(4)
        self.schedules: dict[int, Gcra] = {}
        self.pairs = PairRate()
        self.channel_tasks: dict[int, asyncio.Task[None]] = {}
        self._redis: Any = None
        self.sent = 0
        # A claim whose lease ended before this moment is sent again: every webhook received up
        # to ``outbox_settle_s`` after its lease was processed, and none named its callback data.
        self.stale = datetime.min.replace(tzinfo=UTC)

    def _schedule(self, channel_id: int, rate: int) -> Gcra:
        found = self.schedules.get(channel_id)
        if found is not None and found.rate == rate:
            return found
        url = get_settings().redis_url
        if url:
            if self._redis is None:
                import redis.asyncio as aioredis

                self._redis = aioredis.from_url(url)
            key = f"{get_settings().redis_prefix}:pace:{channel_id}"
            found = RedisGcra(self._redis, key, rate)
        else:
            found = Gcra(rate)
        self.schedules[channel_id] = found
        return found

    async def tick(self) -> int:
        """Start a sender for every number with due rows; how many numbers are busy."""
        await self.reconcile()
        now = clock.now()
        async with unit_of_work() as db:
            horizon = await repo.webhooks_processed_until(db, now)
            self.stale = horizon - timedelta(seconds=get_settings().outbox_settle_s)
            due = await repo.due_channels(db, now, self.stale)
        for channel_id in due:
            task = self.channel_tasks.get(channel_id)
            if task is None or task.done():
                self.channel_tasks[channel_id] = asyncio.create_task(self.run_channel(channel_id))
        return len([t for t in self.channel_tasks.values() if not t.done()])

    async def reconcile(self) -> int:
        """Settle rows in doubt that Meta's status callbacks prove were sent (their sender died
        between Meta's answer and recording it). How many were settled."""
        now = clock.now()
        async with unit_of_work() as db:
            found = await repo.confirmed_in_doubt(db, now, 1000)
            if not found:
                return 0
            await repo.reconciled(
                db,
                [
                    {"p_id": r.id, "p_token": r.claim_token, "wamid": r.wamid, "at": now}
                    for r in found
                ],
            )
            accepted = [
                {"p_id": r.message_id, "wamid": r.wamid, "at": now} for r in found if r.message_id
            ]
            await repo.messages_accepted(db, accepted)
            await _apply_early_statuses(db, [a["p_id"] for a in accepted])
            await realtime_hooks.outbound_recorded(
                db, [(r.workspace_id, r.message_id) for r in found if r.message_id]
            )
        log.info("outbox: %s rows in doubt settled as sent by their status callbacks", len(found))
        return len(found)

    async def run_channel(self, channel_id: int) -> None:
        """Claim and send this number's due rows, two batches in flight, until none is due."""
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                rows: list[tuple[OutboxMessage, dict[str, Any]]] = []
                token: str | None = None
                if len(inflight) < 2:
                    rows, token, schedule = await self._claim(channel_id)
                    if rows and token is not None:
                        inflight.add(asyncio.create_task(self._send_batch(rows, token, schedule)))
                if not inflight:
                    return
                if rows and len(inflight) < 2:
                    continue
                done, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        except Exception as exc:
            log.warning("sender for channel %s stopped: %s", channel_id, type(exc).__name__)
            for task in inflight:
                task.cancel()

    async def _claim(
        self, channel_id: int
    ) -> tuple[list[tuple[OutboxMessage, dict[str, Any]]], str | None, Gcra]:
        async with unit_of_work() as db:
            state = await repo.sending_state(db, channel_id)
            rate = state.rate_per_s if state else DEFAULT_RATE
            schedule = self._schedule(channel_id, rate)
            if state is not None and state.paused_at is not None:
                return [], None, schedule
            from connectx.models.channel import Channel

            channel = await db.get(Channel, channel_id)
            if channel is None or channel.disconnected_at is not None:
                return [], None, schedule
            token = await channels.access_token(db, channel)
            if not token:
                return [], None, schedule
            now = clock.now()
            claim = f"{self.claimer}{secrets.token_hex(4)}"
            limit = max(1, min(self.batch_max, rate // 2))
            lease = timedelta(seconds=get_settings().outbox_lease_s)
            rows = await repo.claim(db, channel_id, now, self.stale, now + lease, claim, limit)
            vault = Vault(db)
            out = []
            for row in rows:
                plain = await vault.decrypt_or_none(
                    row.workspace_id, messages.subject_of(row.contact_id), PAYLOAD, row.payload_enc
                )
                body = json.loads(plain) if plain else {}
                out.append((row, {"pnid": channel.phone_number_id, "token": token, "body": body}))
        return out, claim, schedule

    async def _send_one(self, row: OutboxMessage, spec: dict[str, Any], schedule: Gcra) -> Outcome:
        if not spec["body"]:  # the contact was erased meanwhile: nothing to send
            return Outcome(row, kind="final", code=None, title="content erased")
        if row.kind == "message":
            wait = self.pairs.wait_for(row.recipient_key)
            if wait > 0:
                return Outcome(row, kind="deferred", defer_s=wait)
            await schedule.take()
        try:
            answer = await graph.send_message(spec["pnid"], spec["token"], spec["body"])
        except graph.GraphError as exc:
            return Outcome(
                row, code=exc.code, title=exc.title, kind=classify(exc.code, exc.http_status)
            )
        wamid = ((answer.get("messages") or [{}])[0]).get("id")
        return Outcome(row, wamid=str(wamid) if wamid else None)

    async def _send_batch(
        self, rows: list[tuple[OutboxMessage, dict[str, Any]]], claim: str, schedule: Gcra
    ) -> None:
        outcomes = await asyncio.gather(*(self._send_one(r, s, schedule) for r, s in rows))
        await self._record(list(outcomes), claim)

    async def _record(self, outcomes: list[Outcome], claim: str) -> None:
        now = clock.now()
        finish: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        failed: list[Outcome] = []
        paused: dict[int, Outcome] = {}
        opted_out: list[OutboxMessage] = []
        for o in outcomes:
            row = o.row
            p: dict[str, Any] = {
                "p_id": row.id,
                "p_token": claim,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at,
                "wamid": row.wamid,
                "error_code": o.code,
                "error_title": o.title,
                "sent_at": row.sent_at,
                "payload_enc": row.payload_enc,
                "updated_at": now,
            }
            if o.kind == "sent":
                p.update(status="sent", wamid=o.wamid, sent_at=now, payload_enc=None)
                if row.message_id is not None and o.wamid:
                    accepted.append({"p_id": row.message_id, "wamid": o.wamid, "at": now})
            elif o.kind == "deferred" or o.kind == "token":
                p.update(
                    status="pending",
                    attempts=row.attempts - 1,
                    next_attempt_at=now + timedelta(seconds=o.defer_s),
                )
                if o.kind == "token":
                    paused[row.channel_id] = o
            elif o.kind == "retry" and row.attempts < MAX_ATTEMPTS:
                p.update(
                    status="pending", next_attempt_at=now + timedelta(seconds=backoff(row.attempts))
                )
            else:
                p.update(status="failed", payload_enc=None)
                failed.append(o)
                if o.code == OPTED_OUT:
                    opted_out.append(row)
            finish.append(p)
        async with unit_of_work() as db:
            await repo.finish(db, finish)
            await repo.messages_accepted(db, accepted)
            if accepted:
                await _apply_early_statuses(db, [a["p_id"] for a in accepted])
            for o in failed:
                if o.row.message_id is None:
                    continue
                message = await messages_repo.by_id(db, o.row.message_id)
                if message is not None:
                    await messages_repo.advance_status(
                        db,
                        message.phone_number_id,
                        message.wamid,
                        "failed",
                        STATUS_RANK["failed"],
                        now,
                        o.code,
                        (o.title or "")[:200] or None,
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
        self.sent += len(accepted)
        if paused:
            for channel_id in paused:
                self.schedules.pop(channel_id, None)


async def _apply_early_statuses(db: Any, message_ids: list[int]) -> None:
    """Status callbacks can beat the API answer: apply what was recorded before the wamid."""
    for message in await repo.messages_by_ids(db, message_ids):
        await messages.apply_recorded_statuses(db, message)


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
            await asyncio.to_thread(wakeup.wait, poll_s)
        for task in pacer.channel_tasks.values():
            try:
                await asyncio.wait_for(task, 10)
            except (TimeoutError, Exception):
                task.cancel()
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
