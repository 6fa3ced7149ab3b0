"""Task handlers by name (``domain.verb``, house rule 6)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

# A handler gets the task's transaction and the job's arguments (ids only). Its database effects
# commit atomically with the job being marked done, so a handler's effects happen exactly once.
Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]

_handlers: dict[str, Handler] = {}


def task(name: str) -> Callable[[Handler], Handler]:
    if "." not in name:
        raise ValueError("task names are 'domain.verb'")

    def register(fn: Handler) -> Handler:
        _handlers[name] = fn
        return fn

    return register


def handler_for(name: str) -> Handler | None:
    return _handlers.get(name)


def names() -> list[str]:
    return sorted(_handlers)
