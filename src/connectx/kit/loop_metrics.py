"""Prometheus metrics counted by one event loop's thread without locks.

``prometheus_client``'s Counter and Histogram take a lock on every change, so that any thread may
change them: ~0.7 µs an increment and ~1.5 µs an observation, paid on every webhook POST by
intake's event loop (the process's scarce core under load, docs/whatsapp-inbound.md). What only
one event loop counts needs no lock: these keep plain numbers and hand them to the registry as
a custom collector when ``/metrics`` is read (a snapshot; under the GIL an addition is never
half done, and in this app ``/metrics`` is served by the same loop anyway). Same names, types
and exposition as the library's metrics.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString


class LoopCounter(Collector):
    """A counter with one label, incremented from one thread (``counter.inc(label)``)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        values: Iterable[str] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self._name = name.removesuffix("_total")
        self._documentation = documentation
        self._label = label
        self.counts: dict[str, float] = dict.fromkeys(values, 0.0)  # exposed from the start
        if registry is not None:
            registry.register(self)

    def inc(self, value: str, amount: float = 1.0) -> None:
        self.counts[value] = self.counts.get(value, 0.0) + amount

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, count in list(self.counts.items()):
            family.add_metric([value], count)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, labels=[self._label])


class LoopHistogram(Collector):
    """A histogram without labels, observed from one thread (``histogram.observe(seconds)``)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        bounds = [float(b) for b in buckets if b != float("inf")]
        if bounds != sorted(set(bounds)):
            raise ValueError("buckets must be increasing")
        self._name = name
        self._documentation = documentation
        self._bounds = tuple(bounds)
        self._counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf only)
        self._sum = 0.0
        if registry is not None:
            registry.register(self)

    def observe(self, value: float) -> None:
        # bucket i counts values <= bounds[i] (Prometheus' "le"); cumulated when collected
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def collect(self) -> Iterator[Metric]:
        counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip((*self._bounds, float("inf")), counts, strict=True):
            running += count
            cumulative.append((floatToGoString(bound), running))
        yield HistogramMetricFamily(
            self._name, self._documentation, buckets=cumulative, sum_value=total
        )

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self._name, self._documentation)
