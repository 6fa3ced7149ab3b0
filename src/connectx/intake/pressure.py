"""Intake first: while the web process is saturated, webhook processing paces itself.

Meta's deliveries are answered only once they are stored (batcher.py), and a slow answer is a
retry later, which is more load. When webhooks arrive faster than one machine can both take them
in and process them, the two compete for the same cores, and until now they shared them evenly:
the processing process's backlog only grew, and intake got about two thirds of what it could
have had (bench/results/intake-2026-12-05c.md: the web process alone 0.49 of the bare ceiling,
beside processing 0.36-0.43). So the processors give way during a burst and catch up after it.

**How busy the web process is.** Its *demand* for a CPU over each window of :data:`WINDOW_S`:
the CPU time of all its threads plus the time its event loop's thread was runnable and waited
for a CPU (Linux's ``/proc/self/task/<tid>/schedstat``), over the window's wall time. A loop
that is never idle demands 1.0 whether it gets a core or waits for one beside the processing
process (its CPU time alone would read a starved loop as less busy than it is). The other
threads count because a group commit's work is partly theirs: on SQLite the driver's thread
writes the rows, and with 50-update bodies (~3.5 MB a commit) the loop waits for it a quarter
of the time; the loop alone then read ~0.74, just under the threshold, and the processing
process, unpaced half the time, took 0.3-0.6 of a core from a saturated intake (session 20;
paced, ~0.12). A thread blocked on a slow disk adds nothing. Without schedstat (another
system): the process's CPU time. The group-commit flusher samples it after its flushes
(intake/batcher.py), so
it is measured only while webhooks arrive. Intake is *busy* after :data:`BUSY_STREAK` windows in
a row with a demand of :data:`BUSY_DEMAND` or more whose group commits held :data:`BUSY_ROWS`
events or more on average (a single such window happens at steady rates on a loaded machine):
requests queue up for each commit only when they come faster than they are answered (measured
on SQLite, batch 1: 31 rows a commit and demands of 0.78-0.91 under wrk, against 4.7 rows and
0.57-0.78 at a steady 3,300 webhooks/s, which the web process keeps up with; a demand alone
would have mistaken the steady rate for a burst now and then). ``connectx_intake_loop_demand``
shows the last window's demand, ``connectx_intake_busy_windows_total`` counts busy windows.

**What gives way.** Each busy window marks intake busy for :data:`HOLD_S` in this process and is
passed on to ``connectx serve``'s processing process (a ``b`` line, intake/process.py). A processor
that finishes a batch while intake is busy pauses for :data:`PACE` times that batch's duration (at
most :data:`MAX_PAUSE_S`, and no longer than the pressure lasts): it keeps about a tenth of a core
(1/(1 + PACE); with batches of 50, whose transactions reach their 0.5 s budget, the cap sets the
pause, 0.5 s of work in 5.5), so the inbox still moves during a long burst, and drains the backlog
at full speed once the burst is over. Why not more: events are processed oldest first, and during a
burst that outruns the machine the backlog grows many times faster than even a whole core could
process it (batch 50: intake stores ~10-12k deliveries a second, processing at full speed ~100 on a
whole core), so a message that arrives then reaches the inbox only after the burst's backlog ahead
of it, whatever share processing had meanwhile; that share is taken from intake (session 27,
SQLite, batch 50, eight alternating pairs: +9 % POSTs/s with the processing process at 0.10-0.13 of
a core instead of 0.17-0.26 with ``PACE`` 4 and a 1 s cap; PostgreSQL 0.99, unchanged). Fixed rates
the web process keeps up with are not paced (their loop idles between requests). ``connectx
worker`` processes are not told: they usually run on other machines (on the same one, PostgreSQL's
own backends are shared with them anyway).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

WINDOW_S = 0.1
BUSY_DEMAND = 0.75
BUSY_ROWS = 16
BUSY_STREAK = 3  # windows in a row
HOLD_S = 0.5
PACE = 9.0
MAX_PAUSE_S = 5.0
_STEP_S = 0.05  # a pause looks at the pressure this often

DEMAND = Gauge(
    "connectx_intake_loop_demand",
    "The web process: CPU time of its threads plus its event-loop thread's waits for a CPU, "
    "per wall second, over the last window in which webhooks were committed.",
)
BUSY_WINDOWS = Counter(
    "connectx_intake_busy_windows_total",
    "Windows in which the web process's intake was saturated (processors were asked to pace).",
)
PACED = Counter(
    "connectx_processing_paced_seconds_total",
    "Seconds processors paused to leave the CPU to a saturated intake.",
)

_busy_until = 0.0
_hooks: list[Callable[[], None]] = []


def note_busy(now: float | None = None) -> None:
    """Intake is saturated (measured here, or told by the web process): busy for ``HOLD_S``."""
    global _busy_until
    _busy_until = max(_busy_until, (time.monotonic() if now is None else now) + HOLD_S)


def busy() -> bool:
    return time.monotonic() < _busy_until


def clear() -> None:
    """Forget any pressure (tests; a process that starts fresh)."""
    global _busy_until
    _busy_until = 0.0


def on_busy(hook: Callable[[], None]) -> Callable[[], None]:
    """Call ``hook`` (cheap, never raising) for every busy window measured in this process;
    returns a remover."""
    _hooks.append(hook)
    return lambda: _hooks.remove(hook) if hook in _hooks else None


def _schedstat_used() -> Callable[[], float] | None:
    """Seconds of CPU this process's threads have used, plus the seconds this thread has waited
    to run (schedstat); None where unavailable."""
    path = f"/proc/self/task/{threading.get_native_id()}/schedstat"

    def used() -> float:
        with open(path, "rb") as fh:
            wait = fh.read().split()[1]
        return time.process_time() + int(wait) / 1e9

    try:
        used()
    except (OSError, ValueError):
        return None
    return used


class LoopMeter:
    """Measures the demand of this process, with the waits of the thread that calls
    :meth:`sample` (create and sample it on the event loop's thread); ``used`` and ``clock`` are
    for tests."""

    def __init__(
        self,
        used: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._used = used
        self._clock = clock
        self._start: tuple[float, float] | None = None
        self._rows = self._commits = 0
        self._streak = 0

    def sample(self, rows: int) -> float | None:
        """After a group commit of ``rows`` events: close the window if ``WINDOW_S`` has
        passed; returns its demand (None otherwise)."""
        self._rows += rows
        self._commits += 1
        now = self._clock()
        start = self._start
        if start is not None and now - start[0] < WINDOW_S:
            return None
        rows_per_commit = self._rows / self._commits
        self._rows = self._commits = 0
        if self._used is None:
            self._used = _schedstat_used() or time.process_time
        try:
            used = self._used()
        except (OSError, ValueError):  # (schedstat went away: CPU time from here on)
            self._used, start = time.process_time, None
            used = self._used()
        self._start = (now, used)
        if start is None:
            return None
        demand = (used - start[1]) / (now - start[0])
        DEMAND.set(demand)
        saturated = demand >= BUSY_DEMAND and rows_per_commit >= BUSY_ROWS
        self._streak = self._streak + 1 if saturated else 0
        if self._streak >= BUSY_STREAK:
            BUSY_WINDOWS.inc()
            note_busy()
            for hook in list(_hooks):
                hook()
        return demand


async def pace(worked_s: float, stopping: threading.Event | None = None) -> float:
    """After a batch that took ``worked_s``: while intake is busy, pause ``PACE`` times that
    (at most ``MAX_PAUSE_S``, ending when the pressure does or ``stopping`` is set). Returns
    the seconds paused."""
    remaining = min(MAX_PAUSE_S, PACE * worked_s)
    paused = 0.0
    while remaining > 0 and busy() and not (stopping is not None and stopping.is_set()):
        step = min(remaining, _STEP_S)
        await asyncio.sleep(step)
        remaining -= step
        paused += step
    if paused:
        PACED.inc(paused)
    return paused
