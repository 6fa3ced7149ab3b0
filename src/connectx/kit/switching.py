"""A shorter thread switch interval for a process whose event loop shares the GIL with a database
thread (the web process: intake's group commit).

A group commit's SQLite work runs on aiosqlite's thread. It lets go of the GIL around every
statement's step (the writing) and needs it back to bind the next statement's rows, to end the
transaction and to hand the result to the loop: five or six times per group commit. While the
loop's thread is busy with requests it lets go of the GIL only when it waits for sockets or when
another thread has asked for the GIL for a whole switch interval (5 ms by default), so every one
of those steps could wait up to 5 ms, and the group commit with it, and every POST of the group
with that (session 16: a group of ~125 batch-50 deliveries spent 7 ms in SQLite and 12 ms end
to end). At 0.5 ms, in consecutive runs a minute apart: 8,291 -> 9,438 POSTs/s (batch 50,
data on tmpfs, the processor stopped; 0.1 ms: 9,578; bench/results/intake-2026-12-05h.md).
Process-wide; the loop's thread is the only busy one, so it costs the loop a GIL hand-over at
most every 0.5 ms while the database thread works, and nothing otherwise.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.0005  # Python's default: 0.005


def shorten_switch_interval() -> None:
    """Hand the GIL to a waiting thread after at most :data:`SWITCH_INTERVAL_S`."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
