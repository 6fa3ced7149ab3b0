"""kit/loop_metrics.py: lock-free counters and histograms expose exactly what
``prometheus_client``'s own would for the same changes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from connectx.kit.loop_metrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
VALUES = [0.0, 0.001, 0.0010001, 0.003, 0.01, 0.2, 0.25, 2.5, 2.6, 99.0, 0.0004, 0.05]


def _lines(registry: CollectorRegistry) -> set[str]:
    """The exposition without the library's ``_created`` samples (we keep no creation time)."""
    text = generate_latest(registry).decode()
    return {line for line in text.splitlines() if "_created" not in line}


def test_a_histogram_exposes_what_the_library_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("x_seconds", "Doc.", BUCKETS, registry=ours)
    library = Histogram("x_seconds", "Doc.", buckets=BUCKETS, registry=theirs)
    for value in VALUES:
        loop.observe(value)
        library.observe(value)
    assert _lines(ours) == _lines(theirs)
    assert 'x_seconds_bucket{le="0.001"} 3.0' in _lines(ours)  # "le": at most the bound
    assert "x_seconds_count 12.0" in _lines(ours)


def test_a_counter_exposes_what_the_library_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopCounter("y_total", "Doc.", "outcome", ("stored", "error"), registry=ours)
    library = Counter("y_total", "Doc.", ["outcome"], registry=theirs)
    library.labels("stored")
    library.labels("error")  # (both named before they count, as ours are)
    for outcome in ["stored", "stored", "bad", "stored"]:
        loop.inc(outcome)
        library.labels(outcome).inc()
    loop.inc("stored", 2)
    library.labels("stored").inc(2)
    assert _lines(ours) == _lines(theirs)
    assert 'y_total{outcome="error"} 0.0' in _lines(ours)


def test_buckets_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        LoopHistogram("z", "Doc.", (0.1, 0.05), registry=None)
