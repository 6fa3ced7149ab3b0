"""The simulator's time: the platform clock (:mod:`connectx.kit.clock`) plus an offset of its
own, optionally frozen.

Tests move it with ``POST /_sim/clock`` (or :meth:`SimClock.advance`) to expire media URLs, close
the 24-hour window or refill rate buckets without waiting; a frozen clock makes rate limits
exact. Moving the platform clock in the same process moves this one too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from connectx.kit import clock as platform_clock


class SimClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._frozen_at: datetime | None = None

    def now(self) -> datetime:
        if self._frozen_at is not None:
            return self._frozen_at
        return platform_clock.now() + self.offset

    def time(self) -> float:
        """Seconds since the epoch (Meta's webhook timestamps)."""
        return self.now().timestamp()

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def advance(self, seconds: float) -> None:
        delta = timedelta(seconds=seconds)
        if self._frozen_at is not None:
            self._frozen_at += delta
        self.offset += delta

    def freeze(self) -> None:
        if self._frozen_at is None:
            self._frozen_at = self.now()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            # Carry on from the frozen moment: time never jumps back.
            self.offset = self._frozen_at - platform_clock.now()
            self._frozen_at = None
