"""The garbage collector, quieted for processes that run hot loops (sender, processor, intake).

A sender or a webhook processor allocates short-lived objects by the thousand per second: with
Python's defaults the collector then runs ~180 young collections a second and, every few
seconds, a full one that walks every object the process imported (~170,000 in a worker:
~100 ms each): 14 % of the worker's CPU in bench/outbound.py's ten-number phase, ~10 % of the
webhook processor's in bench/processing.py. What exists once the process has started lives as
long as the process: it is moved out of the collector's sight (``gc.freeze``), and young
collections run 10x less often. Process-wide, so it helps everything else in the process too.
Once per process: a process that starts senders again and again (tests) does not keep freezing
what became garbage since.

Cycles are still collected, and fully at least every :data:`FULL_EVERY_S` seconds (a thread of
its own; session 28). Python starts a full collection only after ten collections of the middle
generation, each after ten young ones, each after 10,000 more container objects made than
freed; a process whose work frees what it makes (intake answering deliveries) nets almost none,
so full collections stopped happening, and what every closed HTTP connection leaves as a cycle
(uvloop's transport and uvicorn's protocol refer to each other: ~23 objects, ~5 kB a
connection, promoted to the old generation while the connection was open) stayed: the web
process grew ~1.5-2.5 MB per bench phase, ~25 MB over bench/intake.py's run, and in production
would keep every connection Meta ever closed until one happened. With the startup objects frozen
a full collection walks only the rest: 5-10 ms for ~20,000 objects in a web process under load.
"""

from __future__ import annotations

import gc
import threading
import time

GC_GEN0 = 10_000  # allocations between young collections (Python: 700)
FULL_EVERY_S = 10.0  # a full collection at least this often (seconds)

_gc_quiet = False
_full: threading.Thread | None = None


def quiet_garbage_collector() -> None:
    """Freeze what exists, make young collections rarer and collect fully every
    :data:`FULL_EVERY_S` seconds, once per process."""
    global _gc_quiet
    if _gc_quiet:
        return
    _gc_quiet = True
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < GC_GEN0:
        gc.set_threshold(GC_GEN0, gen1, gen2)
    _start_full_collections()


def _start_full_collections() -> None:
    global _full
    if _full is None or not _full.is_alive():
        _full = threading.Thread(target=_collecting, name="gc-full", daemon=True)
        _full.start()


def _collecting() -> None:
    while True:
        time.sleep(FULL_EVERY_S)  # (read each time: tests shorten it)
        gc.collect()
