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
import logging
import weakref
from dataclasses import dataclass
from datetime import date, datetime

from prometheus_client import Counter, Histogram

from connectx.intake import repository as repo
from connectx.intake import turns, wakeup
from connectx.kit import clock
from connectx.models.webhook_event import PENDING
from connectx.privacy.vault import Vault

log = logging.getLogger(__name__)

BODY_COLUMN = "webhook_events.body"
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


def new_row(
    meta_app_id: int, received_at: datetime, body_enc: bytes, size: int
) -> dict[str, object]:
    """The ``webhook_events`` row of a raw event just received (its body sealed)."""
    return {
        "source": "whatsapp",
        "meta_app_id": meta_app_id,
        "received_at": received_at,
        "body_enc": body_enc,
        "body_size": size,
        "status": PENDING,
        "attempts": 0,
        "progress": 0,
        "items": 0,
        "unrouted": 0,
        "ignored": 0,
    }


@dataclass
class _Pending:
    meta_app_id: int
    body: bytes
    received_at: datetime
    future: asyncio.Future[None]


class GroupCommitBatcher:
    def __init__(self, max_batch: int = 256, linger_s: float = 0.0, flushers: int = 1) -> None:
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.flushers = flushers
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _start(self) -> asyncio.Queue[_Pending]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [
                asyncio.get_running_loop().create_task(self._run(), name=f"intake-flusher-{i}")
                for i in range(self.flushers)
            ]
        return self._queue

    async def submit(self, meta_app_id: int, body: bytes) -> None:
        """Return once ``body`` is committed; raise :class:`StoreFailed` if it could not be."""
        queue = self._queue or self._start()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.put_nowait(_Pending(meta_app_id, body, clock.now(), future))
        # A request cancelled here cancels only its own future: the write it shares with the
        # other requests runs in the flusher's task, which skips futures already done (so no
        # asyncio.shield, which cost a future and two callbacks per POST).
        await future

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            if self.linger_s and len(batch) < self.max_batch:
                await asyncio.sleep(self.linger_s)
                while len(batch) < self.max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
            try:
                with FLUSH_SECONDS.time():
                    await self._flush(batch)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(StoreFailed("intake is shutting down"))
                raise
            except Exception as exc:
                FLUSH_FAILURES.inc()
                log.error(
                    "could not commit %d webhook event(s): %s", len(batch), type(exc).__name__
                )
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(StoreFailed(type(exc).__name__))
            else:
                BATCH_SIZE.observe(len(batch))
                for item in batch:
                    if not item.future.done():
                        item.future.set_result(None)
                wakeup.notify()

    async def _flush(self, batch: list[_Pending]) -> None:
        rows = await self._seal(batch)  # before the turn: no lock is held while sealing
        async with turns.intake_turn():
            await repo.commit_new(rows)

    async def _seal(self, batch: list[_Pending]) -> list[dict[str, object]]:
        by_day: dict[date, list[_Pending]] = {}
        for item in batch:
            by_day.setdefault(item.received_at.date(), []).append(item)
        vault = Vault()
        rows: list[dict[str, object]] = []
        for items in by_day.values():
            subject = day_subject(items[0].received_at)
            sealed = await vault.encrypt_many(
                None, subject, BODY_COLUMN, [item.body for item in items]
            )
            rows += [
                new_row(item.meta_app_id, item.received_at, body_enc, len(item.body))
                for item, body_enc in zip(items, sealed, strict=True)
            ]
        return rows

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._queue is not None:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if not item.future.done():
                    item.future.set_exception(StoreFailed("intake is shutting down"))
        self._queue = None


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
