"""Fan-out inside one process: the open event streams of each workspace.

Publishers may run on any thread and event loop (the webhook processor and the sender have their
own); each subscriber's queue is fed on the subscriber's own loop. Delivery order is the order
of the calls to :meth:`Hub.deliver`, which the logs call in event-id order.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

from connectx.realtime.events import Event

Item = tuple[tuple[int, int], Event] | None  # None: the stream must end (the client resumes)
QUEUE_MAX = 1000


@dataclass(eq=False)
class Subscriber:
    workspace_id: int
    user_id: int | None
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Item] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX + 1))
    closed: bool = False

    def push(self, item: Item) -> None:
        """On the subscriber's loop. A client too slow to keep up is ended, not buffered
        without bound: it reconnects and resumes from the log."""
        if self.closed:
            return
        if item is None or self.queue.qsize() >= QUEUE_MAX:
            self.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)
            return
        self.queue.put_nowait(item)


class Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[int, set[Subscriber]] = {}

    def subscribe(self, workspace_id: int, user_id: int | None) -> Subscriber:
        sub = Subscriber(workspace_id, user_id, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(workspace_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            subs = self._subs.get(sub.workspace_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.workspace_id]

    def count(self, workspace_id: int | None = None) -> int:
        with self._lock:
            if workspace_id is not None:
                return len(self._subs.get(workspace_id, ()))
            return sum(len(s) for s in self._subs.values())

    def deliver(self, key: tuple[int, int], event: Event) -> None:
        with self._lock:
            targets = list(self._subs.get(event.workspace_id, ()))
        for sub in targets:
            if event.user_id is not None and event.user_id != sub.user_id:
                continue
            _call(sub, (key, event))

    def close_all(self) -> None:
        """End every stream (the bus lost events it cannot replay live): clients resume."""
        with self._lock:
            targets = [s for subs in self._subs.values() for s in subs]
        for sub in targets:
            _call(sub, None)


def _call(sub: Subscriber, item: Item) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is sub.loop:
        sub.push(item)
        return
    with contextlib.suppress(RuntimeError):  # the subscriber's loop is gone
        sub.loop.call_soon_threadsafe(sub.push, item)
