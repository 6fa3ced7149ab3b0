"""Group commit: concurrent webhook requests share one INSERT and one COMMIT.

Each request hands its verified body to the batcher and waits. A flusher task takes everything
queued (up to ``max_batch`` rows), seals the bodies, inserts them in one transaction, commits,
and only then resolves every waiting request: a 200 is sent for nothing that is not on disk. If
the transaction fails, every request of the batch gets an error (Meta retries it).

Batching adapts by itself: while one flush is being written, new requests queue up and go out in
the next, so batches grow with load and a lone request waits for nobody. ``linger_s`` adds an
optional wait for company. One batcher per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from datetime import datetime

from prometheus_client import Counter, Histogram

from connectx.intake import pressure, raw_body, turns, wakeup
from connectx.intake import repository as repo
from connectx.kit import clock
from connectx.kit.collector import quiet_garbage_collector
from connectx.kit.switching import shorten_switch_interval
from connectx.privacy.vault import Vault

log = logging.getLogger(__name__)

BATCH_SIZE = Histogram(
    "connectx_intake_commit_batch_size",
    "Webhook events written per group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
FLUSH_SECONDS = Histogram(
    "connectx_intake_commit_seconds", "Time to seal, insert and commit one group of events."
)
FLUSH_FAILURES = Counter("connectx_intake_commit_failures_total", "Group commits that failed.")


class StoreFailed(Exception):
    """The events could not be committed; the request must not be acknowledged."""


def day_subject(at: datetime) -> str:
    """The key subject of raw bodies received on ``at``'s (UTC) day."""
    return f"webhook_day:{at:%Y-%m-%d}"


_DAY_US = 86_400 * 1_000_000


@functools.lru_cache(maxsize=4)
def _subject_of_day(day: int) -> str:
    """:func:`day_subject` of a day (days since 1970-01-01, UTC), formatted once."""
    return day_subject(clock.from_micros(day * _DAY_US))


# (meta app id, body, received_at (clock.micros), the request's future)
_Pending = tuple[int, bytes, int, "asyncio.Future[None]"]


class GroupCommitBatcher:
    """One loop's group commit: requests append ``(meta_app_id, body, received_at, future)`` to
    a list and wait on the future; one flusher task writes what is there. (A list and a future
    to wake the flusher: an ``asyncio.Queue`` cost two of its methods per request.)"""

    def __init__(self, max_batch: int = 256, linger_s: float = 0.0) -> None:
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._items: list[_Pending] = []
        self._wake: asyncio.Future[None] | None = None  # the idle flusher waits on it
        self._task: asyncio.Task[None] | None = None
        self._writer = repo.NewEventWriter()
        self._lz4 = raw_body.Lz4Packer()
        self._meter: pressure.LoopMeter | None = None  # made on the loop's thread

    def _start(self) -> None:
        # The web process's hot loop: where no sender or processor runs beside it (distributed
        # serve, or no embedded worker) the collector was not quieted, and its full passes over
        # everything the app imported cost ~10 % of a POST (same-run A/B, session 6).
        quiet_garbage_collector()
        shorten_switch_interval()  # the group commit's thread gets the GIL back sooner
        self._meter = pressure.LoopMeter()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="intake-flusher")

    async def submit(self, meta_app_id: int, body: bytes) -> None:
        """Return once ``body`` is committed; raise :class:`StoreFailed` if it could not be."""
        # A request cancelled here cancels only its own future: the write it shares with the
        # other requests runs in the flusher's task, which skips futures already done (so no
        # asyncio.shield, which cost a future and two callbacks per POST).
        await self.enqueue(meta_app_id, body)

    def enqueue(self, meta_app_id: int, body: bytes) -> asyncio.Future[None]:
        """Queue ``body`` for the next group commit: the future is done once it is committed
        (its exception :class:`StoreFailed` if it could not be). Called on the loop's thread,
        from a coroutine or from a protocol's callback (intake/fast_http.py)."""
        task = self._task
        if task is None or task.done():  # (a flusher that died is replaced)
            self._start()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append((meta_app_id, body, clock.micros(), future))
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)
        return future

    async def _next_batch(self) -> list[_Pending]:
        while not self._items:
            wake = self._wake = asyncio.get_running_loop().create_future()
            try:
                await wake
            finally:
                if self._wake is wake:
                    self._wake = None
        if self.linger_s and len(self._items) < self.max_batch:
            await asyncio.sleep(self.linger_s)
        batch = self._items[: self.max_batch]
        del self._items[: self.max_batch]
        return batch

    async def _run(self) -> None:
        try:
            while True:
                batch = await self._next_batch()
                await self._write(batch)
        finally:
            await self._writer.close()

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            with FLUSH_SECONDS.time():
                await self._flush(batch)
        except asyncio.CancelledError:
            for item in batch:
                if not item[3].done():
                    item[3].set_exception(StoreFailed("intake is shutting down"))
            raise
        except Exception as exc:
            FLUSH_FAILURES.inc()
            log.error("could not commit %d webhook event(s): %s", len(batch), type(exc).__name__)
            for item in batch:
                if not item[3].done():
                    item[3].set_exception(StoreFailed(type(exc).__name__))
        else:
            BATCH_SIZE.observe(len(batch))
            for item in batch:
                if not item[3].done():
                    item[3].set_result(None)
            wakeup.notify()
            if self._meter is not None:
                self._meter.sample(len(batch))  # intake first under overload (pressure.py)

    async def _flush(self, batch: list[_Pending]) -> None:
        make = await self._sealing(batch)  # the keys, before the turn: no lock is held meanwhile
        async with turns.intake_turn():
            await self._writer.commit_made(make)

    async def _sealing(self, batch: list[_Pending]) -> repo.Making:
        """The group's events (in the order received), made by a call that compresses and seals
        their bodies: on SQLite large bodies in that call, which the writer runs on the
        database's thread beside the loop (Zstandard), the others here (LZ4); elsewhere all
        here (raw_body.py)."""
        on_thread = await self._writer.thread_packer()
        parts: dict[tuple[int, raw_body.Packer], list[int]] = {}  # (day, codec): indexes
        for n, (_, body, received_at, _) in enumerate(batch):
            packer: raw_body.Packer = self._lz4
            if on_thread is not None and len(body) >= raw_body.ON_THREAD_FROM:
                packer = on_thread
            parts.setdefault((received_at // _DAY_US, packer), []).append(n)
        vault = Vault()
        sealers = [
            (await vault.sealer(None, _subject_of_day(day), packer.label), packer, indexes)
            for (day, packer), indexes in parts.items()
        ]
        sealed: list[bytes] = [b""] * len(batch)

        def seal(packer: raw_body.Packer | None) -> None:
            for sealer, used, indexes in sealers:
                if used is packer:
                    bodies = raw_body.seal_group(sealer, used, [batch[n][1] for n in indexes])
                    for n, body_enc in zip(indexes, bodies, strict=True):
                        sealed[n] = body_enc

        seal(self._lz4)

        def make() -> list[repo.NewEvent]:
            seal(on_thread)
            return [
                (received_at, app_id, body_enc, len(body))
                for (app_id, body, received_at, _), body_enc in zip(batch, sealed, strict=True)
            ]

        return make

    async def close(self) -> None:
        """Stop the flusher (what waits gets :class:`StoreFailed`) and give its connection
        back; the next request starts it again."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._task is not None:
            return  # a request came meanwhile and started a flusher again: it has the rest
        items, self._items = self._items, []
        for item in items:
            if not item[3].done():
                item[3].set_exception(StoreFailed("intake is shutting down"))
        await self._writer.close()


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommitBatcher] = (
    weakref.WeakKeyDictionary()
)


_last: tuple[asyncio.AbstractEventLoop | None, GroupCommitBatcher | None] = (None, None)


def batcher() -> GroupCommitBatcher:
    """This event loop's batcher (the last one asked for is remembered: one loop serves every
    POST of a web process)."""
    global _last
    loop = asyncio.get_running_loop()
    last_loop, last = _last
    if last_loop is loop and last is not None:
        return last
    found = _batchers.get(loop)
    if found is None:
        found = _batchers[loop] = GroupCommitBatcher()
    _last = (loop, found)
    return found


async def close() -> None:
    """Stop this loop's batcher (the app's shutdown, before the engines are disposed)."""
    found = _batchers.get(asyncio.get_running_loop())
    if found is not None:
        await found.close()
