"""The garbage collector, quieted for processes that run hot loops (sender, processor, intake).

A sender or a webhook processor allocates short-lived objects by the thousand per second: with
Python's defaults the collector then runs ~180 young collections a second and, every few
seconds, a full one that walks every object the process imported (~170,000 in a worker:
~100 ms each): 14 % of the worker's CPU in bench/outbound.py's ten-number phase, ~10 % of the
webhook processor's in bench/processing.py. What exists once the process has started lives as
long as the process: it is moved out of the collector's sight (``gc.freeze``), and young
collections run 10x less often. Process-wide, so it helps everything else in the process too;
cycles are still collected. Once per process: a process that starts senders again and again
(tests) does not keep freezing what became garbage since.
"""

from __future__ import annotations

import gc

GC_GEN0 = 10_000  # allocations between young collections (Python: 700)

_gc_quiet = False


def quiet_garbage_collector() -> None:
    """Freeze what exists and make young collections rarer, once per process."""
    global _gc_quiet
    if _gc_quiet:
        return
    _gc_quiet = True
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < GC_GEN0:
        gc.set_threshold(GC_GEN0, gen1, gen2)
