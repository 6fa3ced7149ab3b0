"""Processors: claim stored webhook events in batches and apply them.

A batch is claimed, processed and marked processed in ONE transaction: if the process dies or
the transaction fails half-way, nothing of it is kept and the events are still pending for the
next claim. On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several processors (threads or
``connectx worker`` processes) work side by side; on SQLite the database's single write lock
serialises them, and the claim is read and decoded before that lock is taken (a read
transaction) and claimed again under it: only what is still pending is applied. On SQLite the
raw events live in a file of their own (``connectx.db.events_file``): the effects commit in
the data file, then the events are marked in theirs (:meth:`Marks.write_apart`), so intake's
group commits never wait for a processing transaction; a crash between the two commits leaves
the events pending, and applying them again changes nothing.

A batch that fails is retried one event at a time, so one bad event cannot hold up the others;
an event that fails on its own ``MAX_ATTEMPTS`` times is parked as ``failed`` for inspection.
Database outages are not counted against events: the loop backs off and tries again.

Where processors run: a task of ``connectx serve``'s event loop in embedded mode (no broker;
:class:`EmbeddedProcessor`), and a thread of every ``connectx worker`` (:class:`ProcessorThread`).
They wake when intake commits in the same process (then wait ``processing_gather_ms`` for the
events on their way, so they share a transaction) and otherwise sweep every ``POLL_S`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Counter as Metric
from prometheus_client import Histogram
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.config import Settings, get_settings
from connectx.db import errors, events_file, statistics
from connectx.db.engine import dispose_engines
from connectx.db.session import after_commit, read_only, unit_of_work
from connectx.intake import pressure, turns, wakeup
from connectx.intake import repository as repo
from connectx.intake.dispatch import BatchProcessor, Decoded, Decoder, Outcome, pick
from connectx.intake.repository import Claimed
from connectx.kit import clock
from connectx.kit.collector import quiet_garbage_collector
from connectx.privacy.vault import Vault

log = logging.getLogger(__name__)

# Events claimed per transaction at most. A claim's fixed part (claim, channel, suspension and
# keyword look-ups, the prefetches, status inserts, audit entry, marking done, commit: ~15
# statements, ~10 ms of CPU on SQLite) is paid once per transaction, so small (batch-1) events
# are claimed by the hundred; events with many updates are claimed by the update budget below
# instead. No write lock is shared with intake (PostgreSQL; SQLite with its events file apart,
# db/events_file.py), so a longer transaction keeps nobody waiting:
# bench/processing.py, batch-1 events, PostgreSQL, claims of 600 vs 200 (two pairs, load 2-3):
# CPU per event 0.105 / 0.114 vs 0.129 / 0.145 ms in the process, 0.050 vs 0.060 / 0.070 ms in
# the server, wall 0.18 / 0.26 vs 0.26 / 0.41 ms. SQLite, bench/intake.py's steady 3,300
# webhooks/s of batch-1 events, alternating pairs (session 24): with 200 the processing process
# fell behind (~2,800 events/s in claims of 200, never cut) and the lag's p99 was 7.4 s and
# 1.5 s, with 600 163 and 549 ms (its claims held 200-350 events; CPU per event 252 / 264 vs
# 431 / 286 µs).
EVENTS_PER_BATCH = 600
# ... where the processor and intake share SQLite's one write lock (a database without a file:
# tests), shorter transactions, so a POST waits less for the processor's turn.
EVENTS_PER_BATCH_SHARED_LOCK = 200
MIN_CLAIM = 4  # the smallest claim after a turn cut short by intake
# A processor whose claim took everything pending but fewer events than this waits the
# gathering time before it claims again (process_available's ``linger_s``): below it a
# transaction's fixed part (~5 ms of CPU, two commits) is most of an event's cost. Not above:
# at 3,300 batch-1 webhooks/s (claims of ~100-300) lingering made claims and transactions
# longer and the lag's median 2-3 times as long (docs/whatsapp-inbound.md, "Gathering").
LINGER_BELOW = 64
# SQLite: claim and decode in a read transaction before taking the write lock (intake's group
# commits wait for that lock); PostgreSQL claims with FOR UPDATE SKIP LOCKED in the transaction.
PREPARE_BEFORE_TURN = True
MAX_ATTEMPTS = 5
POLL_S = 0.2
MAX_BACKOFF_S = 30.0

PROCESSED = Metric(
    "connectx_intake_events_processed_total", "Webhook events processed.", ["status"]
)
LAG = Histogram(
    "connectx_intake_lag_seconds",
    "From a webhook's receipt to the commit of its effects.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OUTAGE_ERRORS = (OperationalError, InterfaceError, ConnectionError, OSError)
TIMEOUT_SQLSTATES = ("55P03", "57014")  # lock_timeout, statement_timeout (repo.bound_waits)


def waited_too_long(exc: DBAPIError) -> bool:
    """A PostgreSQL lock or statement timeout: a busy peer, not a bad event."""
    return errors.sqlstate(exc) in TIMEOUT_SQLSTATES


# How many events the next claim of this context takes: about as many as the update budget
# holds at the size of the events seen last (all of ``EVENTS_PER_BATCH`` for batch-1 events),
# and after a transaction cut short (for intake, or by the time budget) about twice what it
# finished, so claimed events are not locked, decoded and planned for nothing. It is sized
# against the caller's limit, never against the last claim: a smaller claim is not a ceiling
# (it was, until session 6: after one turn cut for intake a processor claimed 4 events a
# transaction for good, and paid the transaction's fixed part per 4 events).
_claim_size: contextvars.ContextVar[int] = contextvars.ContextVar("claim_size")
# ... and how many updates it decodes, plans, prefetches and applies at most: after a cut about
# twice what fitted; doubled after every transaction that was not cut, up to ``MAX_ITEMS``.
# Never unlimited: a claim of many 50-update events used to decode and prefetch all of them to
# apply the 0.5 s worth that fitted, and do it again in the next transaction.
UPDATES_PER_TX = 1024
MIN_ITEMS = 8
MAX_ITEMS = 4096
_item_budget: contextvars.ContextVar[int] = contextvars.ContextVar(
    "item_budget", default=UPDATES_PER_TX
)

Listener = Callable[[Outcome], Awaitable[None]]
_listeners: list[Listener] = []


def on_stored(listener: Listener) -> Listener:
    """Register a coroutine called after each batch commits, with the ids it stored (for
    real-time updates, automation, ...). Exceptions are logged, never retried."""
    _listeners.append(listener)
    return listener


def _claim_for(limit: int) -> int:
    """How many events the next claim of this context asks for (at most ``limit``)."""
    return min(limit, _claim_size.get(limit))


def events_per_batch() -> int:
    """The most events one transaction claims on the configured database."""
    return EVENTS_PER_BATCH_SHARED_LOCK if turns.shares_write_lock() else EVENTS_PER_BATCH


async def process_batch(limit: int | None = None) -> int:
    """Claim pending events (up to ``limit``, by default :func:`events_per_batch`; fewer when
    the last transactions showed that fewer fit) and process them in one transaction. Returns
    how many were claimed (0: nothing pending). Raises if the batch failed (nothing is
    kept)."""
    if limit is None:
        limit = events_per_batch()
    size = _claim_for(limit)
    budget = _item_budget.get()
    known: dict[int, Decoded] | None = None
    claimed = 0
    if get_settings().is_sqlite and PREPARE_BEFORE_TURN:
        # Claim and decode before the turn, in a read transaction (WAL: no write lock), so the
        # write lock is held only to plan, look up and write; checked again under the lock.
        async with read_only() as db:
            ahead = await repo.claim(db, size)
            if not ahead:
                return 0
            picked = await pick(Decoder(Vault(db)), ahead, budget)
        known = {event.id: decoded for event, decoded in picked}
        claimed = len(ahead)
    apart = events_file.split()
    async with (
        contextlib.nullcontext() if apart else turns.processor_turn(),
        unit_of_work() as db,
    ):
        await repo.bound_waits(db)
        if known is None:
            events = await repo.claim(db, size)
            claimed = len(events)
        else:  # still pending (another processor may have been first), progress as it is now
            events = await repo.claim_again(db, [event for event, _ in picked])
        if not events:
            return claimed  # (nothing left of a claim made before the turn: claim again)
        batch, marks = await _run(db, events, budget, known)
        if not apart:
            await marks.write(db)
    if apart:
        await marks.write_apart()
    if batch.interrupted:  # intake wanted the lock, or time ran out: about what fits next time
        _claim_size.set(max(MIN_CLAIM, 2 * sum(1 for p in batch.plans if batch.finished(p))))
        _item_budget.set(max(MIN_ITEMS, 2 * batch.applied))
    else:
        budget = min(MAX_ITEMS, 2 * _item_budget.get())
        _item_budget.set(budget)
        per_event = batch.planned / max(1, len(batch.plans))  # updates per event seen
        _claim_size.set(max(MIN_CLAIM, min(limit, int(budget / max(1.0, per_event)) + 1)))
    return claimed


@dataclass(slots=True)
class Marks:
    """What a processing transaction changes of its raw events: held, progress, done."""

    held: list[tuple[int, int, int]] = field(default_factory=list)  # event, workspace, progress
    progress: list[tuple[int, int]] = field(default_factory=list)  # event, updates applied
    finished: list[dict[str, object]] = field(default_factory=list)  # repo.finish_many's rows

    async def write(self, db: AsyncSession) -> None:
        """In ``db``'s transaction (PostgreSQL: the processing transaction itself)."""
        for event_id, workspace_id, progress in self.held:
            await repo.hold(db, event_id, workspace_id, progress)
        for event_id, progress in self.progress:
            await repo.set_progress(db, event_id, progress)
        await repo.finish_many(db, self.finished)

    async def write_apart(self) -> None:
        """SQLite: in a short transaction of the events file, after the effects committed in
        the data file (a crash between the two leaves the events pending: processed again,
        which changes nothing). It takes turns with intake's group commits
        (:mod:`connectx.intake.turns`), which wait for nothing else of processing."""
        if not (self.held or self.progress or self.finished):
            return
        async with turns.processor_turn(), events_file.session() as events:
            await self.write(events)


async def _run(
    db: AsyncSession,
    events: list[Claimed],
    max_items: int | None = None,
    known: dict[int, Decoded] | None = None,
) -> tuple[BatchProcessor, Marks]:
    """Process claimed ``events`` in the caller's transaction; returns what to mark of them
    (the caller writes it: :meth:`Marks.write` in the same transaction, or
    :meth:`Marks.write_apart` after its commit)."""
    batch = BatchProcessor(db, max_items=max_items)
    await batch.run(events, known)
    now = clock.now()
    marks = Marks()
    finished = marks.finished
    counted: Counter[str] = Counter()  # (the metric once per status and batch, not per event)
    for plan in batch.plans:
        event = plan.event
        if plan.held_for is not None:
            marks.held.append((event.id, plan.held_for, plan.done_upto))
            counted["held"] += 1
            continue
        if not batch.finished(plan):
            if plan.done_upto != event.progress:  # (not started: it stays as it was)
                marks.progress.append((event.id, plan.done_upto))
            continue
        status = batch.status_of(plan)
        finished.append(
            {
                "event_id": event.id,
                "status": status,
                "processed_at": now,
                "items": plan.tally.items,
                "unrouted": plan.tally.unrouted,
                "ignored": plan.tally.ignored,
                "progress": plan.done_upto,
            }
        )
        counted[status] += 1
    for status, n in counted.items():
        PROCESSED.labels(status).inc(n)
    received = [
        p.event.received_at for p in batch.plans if p.held_for is None and batch.finished(p)
    ]
    outcome = batch.outcome
    look_again = outcome.unmatched_statuses and db.get_bind().dialect.name == "postgresql"

    async def committed() -> None:
        done = clock.now()
        for at in received:
            LAG.observe(max(0.0, (done - at).total_seconds()))
        if look_again:
            await _apply_overlapping_statuses(outcome)
        for listener in list(_listeners):
            try:
                await listener(outcome)
            except Exception as exc:
                log.error("after-store listener failed: %s", type(exc).__name__)

    after_commit(db, committed)
    return batch, marks


async def _apply_overlapping_statuses(outcome: Outcome) -> None:
    """PostgreSQL: status callbacks that found no message may name one whose sender stored
    Meta's answer while our transaction ran. The sender looks for early callbacks after its
    commit, but could not see ours before we committed, and we could not see its wamid: look
    again now that ours is committed (the two looks cannot both miss)."""
    from connectx.messages import repository as messages_repo
    from connectx.messages.service import apply_late_statuses

    try:
        async with unit_of_work() as db:
            found = []
            for (ws, number), wamids in outcome.unmatched_statuses.items():
                found += await messages_repo.with_wamids(db, ws, number, sorted(wamids))
            await apply_late_statuses(db, found)
    except Exception as exc:  # the callbacks stay recorded; the message keeps its status
        log.error("applying late status callbacks failed: %s", type(exc).__name__)


async def _one_by_one(limit: int) -> int:
    """After a batch failed: process its events separately; count failures of single events."""
    async with unit_of_work() as db:
        ids = [event.id for event in await repo.claim(db, limit)]
    done = 0
    apart = events_file.split()
    for event_id in ids:
        try:
            async with unit_of_work() as db:
                await repo.bound_waits(db)
                event = await repo.claim_one(db, event_id)
                if event is None:
                    continue
                _, marks = await _run(db, [event])
                if not apart:
                    await marks.write(db)
            if apart:
                await marks.write_apart()
            done += 1
        except OUTAGE_ERRORS:
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated or waited_too_long(exc):
                raise  # not the event's fault: the loop backs off, no attempt is counted
            await _count_failure(event_id, exc)
        except Exception as exc:
            await _count_failure(event_id, exc)
    return done or len(ids)


async def _count_failure(event_id: int, exc: BaseException) -> None:
    name = type(exc).__name__
    log.error("webhook event %s failed to process: %s", event_id, name, exc_info=exc)
    async with unit_of_work() as db:
        await repo.record_failure(db, event_id, name, MAX_ATTEMPTS, clock.now())


async def process_available(
    limit: int | None = None,
    max_batches: int | None = None,
    stopping: threading.Event | None = None,
    linger_s: float = 0.0,
) -> int:
    """Process pending events until none are left (or ``max_batches``, or ``stopping`` is set),
    claiming up to ``limit`` a transaction (by default :func:`events_per_batch`). Returns the
    count. ``linger_s``: after a transaction that took everything pending (fewer than
    :data:`LINGER_BELOW` events), wait this long before claiming again, so the events arriving
    meanwhile share the next transaction (the processor loop's gathering)."""
    if limit is None:
        limit = events_per_batch()
    total = 0
    batches = 0
    while (max_batches is None or batches < max_batches) and not (
        stopping is not None and stopping.is_set()
    ):
        batches += 1
        started = time.monotonic()
        asked = _claim_for(limit)  # (what process_batch will ask for)
        try:
            done = await process_batch(limit)
        except OUTAGE_ERRORS:
            raise
        except Exception as exc:
            log.warning(
                "a batch of webhook events failed (%s); retrying one by one", type(exc).__name__
            )
            done = await _one_by_one(limit)
        if done == 0:
            break
        total += done
        await statistics.keep_current()  # a long backlog fills tables from empty
        if pressure.busy():  # intake first while the web process is saturated (pressure.py)
            await pressure.pace(time.monotonic() - started, stopping)
        elif linger_s and done < min(asked, LINGER_BELOW):
            await asyncio.sleep(linger_s)
    return total


def _cancelled() -> bool:
    """Whether this task was really asked to stop (``task.cancel()``), as opposed to a
    ``CancelledError`` leaking out of a driver, a pool or a wake-up (which must not end the
    loop)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _pause(seconds: float, seen: int | None = None) -> bool:
    """Wait for a wake-up or ``seconds``; a failing wake-up degrades to a plain sleep. True
    when woken."""
    try:
        return await wakeup.wait(seconds, seen)
    except (Exception, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and _cancelled():
            raise
        log.warning("webhook wake-up failed (%s); sweeping on the timer", type(exc).__name__)
        await asyncio.sleep(seconds)
        return False


async def run_forever(stopping: threading.Event | None = None, poll_s: float = POLL_S) -> None:
    """The processor loop: process, then sleep until woken or ``poll_s`` passes. Only a real
    cancellation of this task or ``stopping`` ends it: any failure of a pass (a pool timeout, a
    stray ``CancelledError``, a lost wake-up) is logged and the loop carries on sweeping."""
    quiet_garbage_collector()  # (~10 % of processing's CPU went to the collector)
    try:
        await _loop(stopping, poll_s)
    finally:
        await statistics.settle()  # (its connection back before the engines are disposed)


async def _loop(stopping: threading.Event | None, poll_s: float) -> None:
    backoff = 0.0
    while stopping is None or not stopping.is_set():
        seen = wakeup.generation()
        try:
            await process_available(stopping=stopping, linger_s=_gather_s())
            await statistics.keep_current()
            backoff = 0.0
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and _cancelled():
                raise
            backoff = min(MAX_BACKOFF_S, max(0.5, backoff * 2))
            log.warning("webhook processing paused %.1fs: %s", backoff, type(exc).__name__)
            await _pause(backoff)
            continue
        woken = await _pause(poll_s, seen)
        if woken and not (stopping is not None and stopping.is_set()):  # (not for a stop)
            await _gather()


def _gather_s() -> float:
    return get_settings().processing_gather_ms / 1000


async def _gather() -> None:
    """Woken by new events: give those on their way ``processing_gather_ms`` to arrive, so
    they share the transaction (docs/whatsapp-inbound.md, "Gathering")."""
    if gather_s := _gather_s():
        await asyncio.sleep(gather_s)


class ProcessorThread:
    """A processor on its own thread and event loop (and so its own database engine)."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._main, name="webhook-processor", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        async def main() -> None:
            try:
                await run_forever(self._stopping, self.poll_s)
            finally:
                await dispose_engines()

        while not self._stopping.is_set():  # the processor must outlive anything that kills a loop
            try:
                asyncio.run(main())
            except BaseException as exc:  # logged; the thread starts a fresh loop
                log.error("webhook processor loop ended (%s); restarting", type(exc).__name__)
            self._stopping.wait(1.0)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the batch in hand (up to ``timeout_s``), then stop."""
        self._stopping.set()
        wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("webhook processor still busy after %.0fs; leaving it", timeout_s)
            self._thread = None


class EmbeddedProcessor:
    """The processor as a task of the web server's own event loop (embedded mode).

    One interpreter runs intake, pages and processing either way; as a task of the same loop
    the processor gives the loop a turn at points it chooses (every couple of milliseconds of
    CPU, :mod:`connectx.intake.dispatch`) instead of holding the GIL for whole switch
    intervals against the web thread, and on SQLite it takes turns at the write lock with
    intake's group commits (:mod:`connectx.intake.turns`). Like the thread, it outlives
    anything that ends its loop: a task that ends without being stopped is started again."""

    RESTART_S = 1.0  # wait before starting a loop that ended again

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._stopping = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._loop = asyncio.get_running_loop()
        self._spawn()

    def _spawn(self) -> None:
        if self._stopping.is_set() or self._loop is None or self._loop.is_closed():
            return
        self._task = self._loop.create_task(
            run_forever(self._stopping, self.poll_s), name="webhook-processor"
        )
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping.is_set():
            return
        reason = "cancelled" if task.cancelled() else type(task.exception()).__name__
        log.error("webhook processor loop ended (%s); restarting", reason)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_later(self.RESTART_S, self._spawn)

    def stop(self) -> None:
        """Stop now (from any thread): a transaction in hand rolls back, its events stay
        pending."""
        self._stopping.set()
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Finish the batch in hand (up to ``timeout_s``), then stop."""
        self._stopping.set()
        wakeup.notify()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            log.warning("webhook processor still busy after %.0fs; stopping it", timeout_s)
            task.cancel()
        except (Exception, asyncio.CancelledError):  # it ended; nothing more to do here
            if not task.done():
                raise


_embedded: EmbeddedProcessor | None = None


def start_embedded(settings: Settings) -> None:
    """Run the processor in this web process's event loop when background work runs here (no
    broker and ``CONNECTX_EMBEDDED_WORKER`` on). Idempotent; call from the running loop."""
    global _embedded
    if _embedded is not None or settings.broker_url or not settings.embedded_worker:
        return
    _embedded = EmbeddedProcessor()
    _embedded.start()


def stop_embedded() -> None:
    """Stop the embedded processor at once (tests that drive processing themselves)."""
    global _embedded
    processor, _embedded = _embedded, None
    if processor is not None:
        processor.stop()


async def close_embedded(timeout_s: float = 30.0) -> None:
    """Let the embedded processor finish its batch, then stop it (server shutdown)."""
    global _embedded
    processor, _embedded = _embedded, None
    if processor is not None:
        await processor.aclose(timeout_s)
