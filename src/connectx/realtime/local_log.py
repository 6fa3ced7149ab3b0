"""The in-process event log (no Redis): a bounded window of recent events per workspace.

Ids are ``<ms>-<seq>`` like Redis stream ids, increasing within the process. The log remembers,
per workspace, the newest id that fell out of the window (initially the process's start), so a
client resuming from an id older than that is told to reload instead of silently missing events
(after a restart every older id is such an id).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from connectx.realtime.events import Event
from connectx.realtime.hub import Hub

WINDOW = 1000  # events kept per workspace

Key = tuple[int, int]


class LocalLog:
    def __init__(self, hub: Hub, window: int = WINDOW) -> None:
        self.hub = hub
        self.window = window
        self._lock = threading.Lock()
        self._boot: Key = (int(time.time() * 1000), 0)
        self._last: Key = self._boot
        self._events: dict[int, deque[tuple[Key, Event]]] = {}
        self._dropped: dict[int, Key] = {}

    def _next_key(self) -> Key:
        ms = int(time.time() * 1000)
        last_ms, seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, seq + 1)
        return self._last

    def publish(self, events: list[Event]) -> list[Key]:
        keys = []
        with self._lock:  # ids and delivery in one order
            for event in events:
                key = self._next_key()
                log = self._events.setdefault(event.workspace_id, deque())
                log.append((key, event))
                if len(log) > self.window:
                    self._dropped[event.workspace_id] = log.popleft()[0]
                self.hub.deliver(key, event)
                keys.append(key)
        return keys

    def head(self, workspace_id: int) -> Key:
        with self._lock:
            log = self._events.get(workspace_id)
            if log:
                return log[-1][0]
            return self._dropped.get(workspace_id, self._boot)

    def since(self, workspace_id: int, after: Key) -> list[tuple[Key, Event]] | None:
        """The events after ``after``, or None when some of them may be lost."""
        with self._lock:
            log = self._events.get(workspace_id, deque())
            floor = self._dropped.get(workspace_id, self._boot)
            head = log[-1][0] if log else floor
            if after < floor or after > head:
                return None
            return [(k, e) for k, e in log if k > after]

    def reset(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._events.clear()
            self._dropped.clear()
            self._boot = self._last = (int(time.time() * 1000), 0)
