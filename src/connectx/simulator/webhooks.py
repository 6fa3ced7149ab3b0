"""Signed webhook delivery, like Meta's: one shared aiohttp session, optional batching of
several updates into one POST, ``X-Hub-Signature-256`` over the exact bytes sent, and retries
with backoff while the receiver answers anything but 200.

Delayed updates (status callbacks) wait in a heap served by one task, not a task each, so a
benchmark's hundreds of thousands of statuses cost little. :meth:`Dispatcher.settle` waits until
everything emitted has been delivered (or given up), which tests and benchmarks use.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from connectx.integrations.whatsapp.signature import sign
from connectx.simulator.payloads import Update, encode, envelope
from connectx.simulator.settings import AppConfig, SimConfig

log = logging.getLogger(__name__)

USER_AGENT = "facebookexternalua"
KEPT_DELIVERIES = 5000


@dataclass
class Delivery:
    id: int
    app_id: str
    url: str
    body: bytes
    signature: str | None
    updates: int
    attempts: int = 0
    state: str = "pending"  # pending | retrying | delivered | dropped
    last_status: int | None = None
    last_error: str | None = None
    first_at: float = field(default_factory=time.time)
    last_at: float | None = None

    def as_json(self, *, with_body: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "app_id": self.app_id,
            "url": self.url,
            "updates": self.updates,
            "attempts": self.attempts,
            "state": self.state,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "signature": self.signature,
        }
        if with_body:
            out["body"] = self.body.decode("utf-8", "replace")
        return out


Factory = Callable[[], Update | None]


class Dispatcher:
    def __init__(self, config: SimConfig, apps: Callable[[str], AppConfig | None]) -> None:
        self.config = config
        self._apps = apps
        self._queue: asyncio.Queue[Update] = asyncio.Queue()
        self._heap: list[tuple[float, int, Factory | Delivery]] = []
        self._seq = itertools.count(1)
        self._delivery_ids = itertools.count(1)
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._sem = asyncio.Semaphore(config.webhooks.concurrency)
        self._session: aiohttp.ClientSession | None = None
        self.deliveries: deque[Delivery] = deque(maxlen=KEPT_DELIVERIES)
        self.counts = {"posts": 0, "delivered": 0, "failed_attempts": 0, "dropped": 0}

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._session is not None:
            return
        hooks = self.config.webhooks
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=hooks.timeout_s),
            connector=aiohttp.TCPConnector(limit=hooks.concurrency * 2),
            headers={"User-Agent": USER_AGENT},
        )
        self._tasks = [
            asyncio.create_task(self._consume(), name="sim-webhooks"),
            asyncio.create_task(self._timers(), name="sim-timers"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._inflight]:
            task.cancel()
        for task in [*self._tasks, *self._inflight]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the simulator's webhook dispatcher has not been started")
        return self._session

    # -- bookkeeping ---------------------------------------------------------------------------
    def _busy(self, n: int) -> None:
        self._outstanding += n
        if self._outstanding > 0:
            self._idle.clear()
        else:
            self._outstanding = 0
            self._idle.set()

    @property
    def outstanding(self) -> int:
        return self._outstanding

    async def settle(self, timeout_s: float = 30.0) -> bool:
        """Wait until every emitted update has been delivered or dropped. False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False

    # -- emitting ------------------------------------------------------------------------------
    def emit(self, update: Update) -> None:
        self._busy(1)
        self._queue.put_nowait(update)

    def emit_later(self, delay_s: float, factory: Factory) -> None:
        """Build and emit an update after ``delay_s`` (the factory may return None to skip)."""
        if delay_s <= 0:
            update = factory()
            if update is not None:
                self.emit(update)
            return
        self._busy(1)
        self._push(time.monotonic() + delay_s, factory)

    def _push(self, due: float, item: Factory | Delivery) -> None:
        first = not self._heap or due < self._heap[0][0]
        heapq.heappush(self._heap, (due, next(self._seq), item))
        if first:
            self._wake.set()

    async def _timers(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, item = heapq.heappop(self._heap)
                if isinstance(item, Delivery):
                    self._start_post(item)
                    continue
                try:
                    update = item()
                except Exception:  # a status for a message that vanished (reset): skip it
                    log.exception("simulator: a scheduled update could not be built")
                    update = None
                if update is not None:
                    self._queue.put_nowait(update)  # already counted as outstanding
                else:
                    self._busy(-1)
            timeout = self._heap[0][0] - time.monotonic() if self._heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        batching = self.config.batching
        while True:
            first = await self._queue.get()
            batch = [first]
            size = first.size
            deadline = loop.time() + batching.window_ms / 1000
            while size < batching.max_updates:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        async with asyncio.timeout(remaining):
                            item = await self._queue.get()
                    except TimeoutError:
                        break
                batch.append(item)
                size += item.size
            by_app: dict[str, list[Update]] = {}
            for update in batch:
                by_app.setdefault(update.app_id, []).append(update)
            for app_id, updates in by_app.items():
                try:
                    body = encode(
                        envelope(updates), escape_slashes=self.config.webhooks.escape_slashes
                    )
                except (TypeError, ValueError):
                    log.exception("simulator: updates that cannot be encoded were dropped")
                    self._busy(-len(updates))
                    continue
                await self._sem.acquire()
                self._busy(1 - len(updates))  # n updates become one delivery
                self._new_delivery(app_id, body, None, sum(u.size for u in updates), acquired=True)

    # -- posting -------------------------------------------------------------------------------
    def post_raw(self, app_id: str, body: bytes, signature: str | None = None) -> Delivery:
        """Deliver ``body`` as is (a corpus payload, a bad signature...)."""
        self._busy(1)
        return self._new_delivery(app_id, body, signature, 1, acquired=False)

    def _new_delivery(
        self, app_id: str, body: bytes, signature: str | None, updates: int, *, acquired: bool
    ) -> Delivery:
        app = self._apps(app_id)
        url = self.config.callback_for(app) if app else self.config.callback_url
        if signature is None and app is not None:
            signature = sign(app.app_secret, body)
        delivery = Delivery(next(self._delivery_ids), app_id, url, body, signature, updates)
        self.deliveries.append(delivery)
        self._start_post(delivery, acquired=acquired)
        return delivery

    def _start_post(self, delivery: Delivery, *, acquired: bool = False) -> None:
        task = asyncio.create_task(self._post(delivery, acquired))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _post(self, delivery: Delivery, acquired: bool) -> None:
        if not acquired:
            await self._sem.acquire()
        try:
            delivery.attempts += 1
            delivery.last_at = time.time()
            self.counts["posts"] += 1
            headers = {"Content-Type": "application/json"}
            if delivery.signature is not None:
                headers["X-Hub-Signature-256"] = delivery.signature
            try:
                async with self.session.post(
                    delivery.url, data=delivery.body, headers=headers
                ) as r:
                    await r.read()
                    delivery.last_status = r.status
                    delivery.last_error = None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                delivery.last_status = None
                delivery.last_error = type(exc).__name__
        finally:
            self._sem.release()
        if delivery.last_status == 200:
            delivery.state = "delivered"
            self.counts["delivered"] += 1
            self._busy(-1)
            return
        self.counts["failed_attempts"] += 1
        hooks = self.config.webhooks
        delay = min(hooks.retry_base_s * 2 ** (delivery.attempts - 1), hooks.retry_max_s)
        if time.time() + delay - delivery.first_at > hooks.retry_for_s:
            delivery.state = "dropped"
            self.counts["dropped"] += 1
            self._busy(-1)
            return
        delivery.state = "retrying"
        self._push(time.monotonic() + delay, delivery)

    # -- the verification handshake --------------------------------------------------------------
    async def verify(self, app: AppConfig) -> dict[str, Any]:
        """Do Meta's GET handshake against the app's callback URL."""
        challenge = str(secrets.randbelow(10**9))
        query = urlencode(
            {
                "hub.mode": "subscribe",
                "hub.verify_token": app.verify_token,
                "hub.challenge": challenge,
            }
        )
        url = self.config.callback_for(app)
        try:
            async with self.session.get(f"{url}?{query}") as r:
                text = await r.text()
                ok = r.status == 200 and text == challenge
                return {"ok": ok, "status": r.status, "url": url}
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return {"ok": False, "status": None, "error": type(exc).__name__, "url": url}
