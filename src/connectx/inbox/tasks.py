"""Background parts of the inbox, loaded by every process that runs background work."""

from __future__ import annotations

from connectx.realtime import hooks as _realtime_hooks  # noqa: F401 (registers the listener)
