"""The Redis event log and fan-out (``CONNECTX_REDIS_URL`` set): any number of processes.

Each event is appended to the workspace's stream ``<prefix>:rt:<workspace>`` (trimmed to about
``WINDOW`` entries) and published on the channel ``<prefix>:rt`` by one Lua script, so the
stream id is the event id and every subscriber sees events in id order. Every ``connectx serve``
process holds one subscription (:class:`RedisFeed`) and hands events to its local streams;
resuming reads the stream (``XRANGE``). If the subscription breaks, the process ends its streams:
clients reconnect and resume from the stream, so nothing published meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from connectx.config import get_settings
from connectx.realtime.events import ZERO, Event, format_id, parse_id
from connectx.realtime.hub import Hub

log = logging.getLogger(__name__)

WINDOW = 1000
Key = tuple[int, int]

_APPEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2])
redis.call('PUBLISH', KEYS[2], id .. '|' .. ARGV[2])
return id
"""

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def _prefix() -> str:
    return get_settings().redis_prefix


def stream_key(workspace_id: int) -> str:
    return f"{_prefix()}:rt:{workspace_id}"


def channel() -> str:
    return f"{_prefix()}:rt"


def client() -> Any:
    """This loop's Redis client (clients are bound to the loop that opened them)."""
    url = get_settings().redis_url
    assert url, "CONNECTX_REDIS_URL is not set"
    loop = asyncio.get_running_loop()
    held = _clients.get(loop)
    if held is None or held[0] != url:
        held = _clients[loop] = (url, aioredis.from_url(url))
    return held[1]


async def publish(events: list[Event]) -> list[Key]:
    redis = client()
    script = redis.register_script(_APPEND)
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            await script(
                keys=[stream_key(event.workspace_id), channel()],
                args=[WINDOW, event.encode()],
                client=pipe,
            )
        ids = await pipe.execute()
    return [parse_id(_text(i)) or ZERO for i in ids]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def head(workspace_id: int) -> Key:
    info = await _info(workspace_id)
    return parse_id(_text(info["last-generated-id"])) or ZERO if info else ZERO


async def _info(workspace_id: int) -> dict[str, Any] | None:
    try:
        raw = await client().xinfo_stream(stream_key(workspace_id))
    except RedisError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise
    return {_text(k): v for k, v in raw.items()}


async def since(workspace_id: int, after: Key) -> list[tuple[Key, Event]] | None:
    """The events after ``after``, or None when some of them were trimmed away (or Redis lost
    the stream)."""
    info = await _info(workspace_id)
    if info is None:
        return [] if after == ZERO else None
    last = parse_id(_text(info["last-generated-id"])) or ZERO
    if after > last:
        return None
    trimmed = int(info.get("entries-added", 0)) > int(info.get("length", 0))
    first = info.get("first-entry")
    first_key = parse_id(_text(first[0])) if first else None
    if trimmed and (first_key is None or after < first_key):
        return None  # events between ``after`` and the window were trimmed away
    out: list[tuple[Key, Event]] = []
    start = "(" + format_id(after)
    while True:
        rows = await client().xrange(stream_key(workspace_id), min=start, count=500)
        for raw_id, fields in rows:
            key = parse_id(_text(raw_id))
            payload = fields.get(b"e") or fields.get("e")
            if key is None or payload is None:
                continue
            out.append((key, Event.decode(payload)))
        if len(rows) < 500:
            return out
        start = "(" + _text(rows[-1][0])


class RedisFeed:
    """This process's subscription: hands every published event to the local streams."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="realtime-redis")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            pubsub = client().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel())
                self.ready.set()
                backoff = 0.2
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is None:
                        continue
                    self._dispatch(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("real-time subscription lost (%s); retrying", type(exc).__name__)
                self.hub.close_all()  # streams resume from the log once we are back
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, data: Any) -> None:
        if not isinstance(data, bytes | str):
            return
        raw_id, sep, payload = _text(data).partition("|")
        key = parse_id(raw_id)
        if not sep or key is None:
            return
        try:
            event = Event.decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("real-time: ignored a malformed event")
            return
        self.hub.deliver(key, event)
