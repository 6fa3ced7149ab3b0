"""The one source of time. Tests move it with :func:`freeze`/:func:`advance`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_offset = timedelta(0)
_offset_s = 0.0
_offset_us = 0


def now() -> datetime:
    return datetime.now(UTC) + _offset


def seconds() -> float:
    """:func:`now` as POSIX seconds, without making a datetime (for hot-path expiry checks)."""
    return time.time() + _offset_s


def micros() -> int:
    """:func:`now` as POSIX microseconds, an exact integer (intake stamps every webhook with
    it: a datetime per POST cost its event loop ~1 µs, and asyncpg's encoding of datetimes
    ~2 µs a row more than of integers)."""
    return time.time_ns() // 1000 + _offset_us


def from_micros(micros: int) -> datetime:
    """POSIX microseconds (:func:`micros`) as an aware datetime (UTC)."""
    return EPOCH + timedelta(microseconds=micros)


def micros_of(at: datetime) -> int:
    """An aware datetime as POSIX microseconds (:func:`micros`), exactly."""
    return (at - EPOCH) // timedelta(microseconds=1)


def advance(delta: timedelta) -> None:
    """Move the clock forward for every caller in this process (tests only)."""
    global _offset, _offset_s, _offset_us
    _offset += delta
    _offset_s = _offset.total_seconds()
    _offset_us = _offset // timedelta(microseconds=1)


def reset() -> None:
    global _offset, _offset_s, _offset_us
    _offset = timedelta(0)
    _offset_s = 0.0
    _offset_us = 0
