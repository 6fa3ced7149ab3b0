"""Choosing the bus: Redis when ``CONNECTX_REDIS_URL`` is set, this process otherwise.

Publishing (:func:`publish`) works from any thread or event loop. Each web app holds a feed
(:func:`start`, in its lifespan) from which its event streams read: the process-wide local log,
or its own Redis subscription.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectx.config import get_settings
from connectx.realtime.events import Event
from connectx.realtime.hub import Hub
from connectx.realtime.local_log import LocalLog

if TYPE_CHECKING:
    from connectx.realtime.redis_log import RedisFeed

log = logging.getLogger(__name__)

Key = tuple[int, int]

LOCAL_HUB = Hub()
LOCAL = LocalLog(LOCAL_HUB)

Forward = Callable[[list[Event]], Awaitable[list[Key]]]
_forward: Forward | None = None


def forward_to(forward: Forward | None) -> None:
    """Publish through ``forward`` instead of this process's own log (without Redis): the
    webhook processing process hands its events to the web process whose streams read them
    (:mod:`connectx.intake.process`)."""
    global _forward
    _forward = forward


async def publish(events: list[Event]) -> list[Key]:
    """Append ``events`` to their workspaces' logs and fan them out. Call only after the
    transaction that caused them committed (:mod:`connectx.realtime.publish` does)."""
    if not events:
        return []
    if get_settings().redis_url:
        return await _redis().publish(events)
    if _forward is not None:
        return await _forward(events)
    return LOCAL.publish(events)


@dataclass
class Feed:
    """Where one web app's streams read from."""

    hub: Hub
    redis: RedisFeed | None = None

    async def head(self, workspace_id: int) -> Key:
        if self.redis is not None:
            return await _redis().head(workspace_id)
        return LOCAL.head(workspace_id)

    async def since(self, workspace_id: int, after: Key) -> list[tuple[Key, Event]] | None:
        if self.redis is not None:
            return await _redis().since(workspace_id, after)
        return LOCAL.since(workspace_id, after)


def _redis() -> Any:
    """The Redis log module, imported only when Redis is configured: the client library
    costs every process ~15-18 MB of memory (the web process and the webhook processing
    process both; the platform's memory goal is ~300 MB), and without Redis nothing uses it."""
    from connectx.realtime import redis_log

    return redis_log


async def start(app: Any) -> Feed:
    if get_settings().redis_url:
        hub = Hub()
        feed = Feed(hub, _redis().RedisFeed(hub))
        assert feed.redis is not None
        await feed.redis.start()
    else:
        feed = Feed(LOCAL_HUB)
    app.state.realtime = feed
    return feed


async def stop(app: Any) -> None:
    feed: Feed | None = getattr(app.state, "realtime", None)
    if feed is not None:
        feed.hub.close_all()
        if feed.redis is not None:
            await feed.redis.stop()


def feed_of(app: Any) -> Feed:
    feed: Feed | None = getattr(app.state, "realtime", None)
    if feed is None:  # an app run without its lifespan: the local log still works
        feed = Feed(LOCAL_HUB)
    return feed
