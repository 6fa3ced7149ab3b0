"""Background runtime hooks for the web process (filled in by the jobs subsystem)."""

from __future__ import annotations

from connectx.config import Settings


async def start_embedded(settings: Settings) -> None:
    return None


async def stop_embedded() -> None:
    return None
