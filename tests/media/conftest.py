"""The platform and the simulator on loopback (the outbound tests' world), with media helpers."""

from __future__ import annotations

from tests.outbound.conftest import World, world

__all__ = ["World", "world"]
