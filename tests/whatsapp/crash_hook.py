"""Imported into a ``connectx worker`` by tests/whatsapp/test_crash.py (``CONNECTX_CRASH_MARKER``
names a file): its webhook processor applies at most 30 updates per transaction, and its second
transaction stops for good once it has written its messages, before its commit, after creating
the marker file. The test SIGKILLs the worker there: at a known point, with committed work
behind it and uncommitted work in hand, however fast or loaded the machine is."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from connectx.intake import dispatch

UPDATES_PER_TRANSACTION = 30
STOP_IN = 2  # the transaction (BatchProcessor) that stops

_marker = Path(os.environ["CONNECTX_CRASH_MARKER"])
_init = dispatch.BatchProcessor.__init__
_flush = dispatch.BatchProcessor._flush_messages
_made = 0


def _small_init(self: Any, db: Any, budget_s: float = dispatch.TX_BUDGET_S, **kw: Any) -> None:
    global _made
    _made += 1
    self.crash_number = _made
    wanted = kw.get("max_items") or UPDATES_PER_TRANSACTION
    _init(self, db, budget_s, max_items=min(wanted, UPDATES_PER_TRANSACTION))


async def _flush_then_stop(self: Any) -> None:
    await _flush(self)
    if self.crash_number == STOP_IN:
        _marker.touch()
        time.sleep(3600)  # blocks the processor's thread: its transaction stays open


dispatch.BatchProcessor.__init__ = _small_init  # type: ignore[method-assign]
dispatch.BatchProcessor._flush_messages = _flush_then_stop  # type: ignore[method-assign]
