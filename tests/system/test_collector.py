"""The quieted garbage collector (kit/collector.py) still collects cycles left in the old
generation: a full collection every few seconds, whatever the allocation counts say."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from connectx.kit import collector


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_quieted_process_collects_old_cycles_on_a_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cycle moved to the old generation (as a closed connection's transport and protocol
    are, having lived through young collections) is freed although no allocation would start
    a collection: automatic collection is off here, only the timer's collections run."""
    monkeypatch.setattr(collector, "_gc_quiet", False)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # the test process's objects stay as they are
    monkeypatch.setattr(gc, "set_threshold", lambda *_: None)
    monkeypatch.setattr(collector, "FULL_EVERY_S", 0.05)
    monkeypatch.setattr(collector, "_full", None)  # a thread of this test (another may sleep)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gc.collect()  # a cycle still referenced: promoted to the old generation
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # nothing collects it by itself with collection off
        collector.quiet_garbage_collector()
        deadline = time.monotonic() + 5
        while gone() is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gone() is None
    finally:
        if was_enabled:
            gc.enable()
