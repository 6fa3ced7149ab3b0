"""One member's server-sent event stream of their workspace.

The stream subscribes first, then replays what the client missed (``Last-Event-ID``, or the
``since`` query parameter for the first connection of a page that knows its snapshot's id),
then forwards live events, skipping any it already sent. Frames:

- ``event: ready`` (``id``: the newest event id): a fresh stream, nothing to replay;
- ``event: reset``: the events after the client's id are no longer all in the log (window
  passed, restart): reload what is on screen, then carry on from this frame's id;
- ``event: <type>`` with ``id`` and JSON ``data`` (``{"type": ..., ...ids}``);
- ``: keepalive`` comments every ``HEARTBEAT_S`` seconds.

A stream lasts at most ``LIFETIME_S``; the browser reconnects by itself (``retry``), which also
re-checks the session and the membership.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from connectx.realtime.bus import Feed
from connectx.realtime.events import Event, format_id, parse_id

HEARTBEAT_S = 15.0
LIFETIME_S = 300.0
RETRY_MS = 2000

Key = tuple[int, int]


def frame(kind: str, key: Key, data: dict[str, object]) -> str:
    body = json.dumps({"type": kind, **data}, separators=(",", ":"))
    return f"id: {format_id(key)}\nevent: {kind}\ndata: {body}\n\n"


async def events_for(
    feed: Feed, workspace_id: int, user_id: int | None, last_event_id: str | None
) -> AsyncIterator[str]:
    sub = feed.hub.subscribe(workspace_id, user_id)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        after = parse_id(last_event_id)
        missed = await feed.since(workspace_id, after) if after is not None else None
        if missed is None:
            sent = await feed.head(workspace_id)
            yield frame("reset" if last_event_id else "ready", sent, {})
        else:
            assert after is not None
            sent = after
            for key, event in missed:
                sent = key
                if event.visible_to(user_id):
                    yield _event_frame(key, event)
        deadline = time.monotonic() + LIFETIME_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                item = await asyncio.wait_for(sub.queue.get(), min(HEARTBEAT_S, remaining))
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if item is None:
                return
            key, event = item
            if key <= sent:
                continue
            sent = key
            if event.visible_to(user_id):
                yield _event_frame(key, event)
    finally:
        feed.hub.unsubscribe(sub)


def _event_frame(key: Key, event: Event) -> str:
    return frame(event.type, key, dict(event.data))
