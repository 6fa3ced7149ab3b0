"""UTCDateTime's one-step conversion on SQLite stores and reads what SQLAlchemy's DATETIME did."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from connectx.db.base import UTCDateTime


def _times() -> list[datetime]:
    rng = random.Random(7)
    base = datetime(1, 1, 2, tzinfo=UTC)
    out = [datetime(2026, 12, 6, 8, 0, 0, 0, tzinfo=UTC), datetime(999, 1, 1, tzinfo=UTC)]
    for _ in range(2000):
        at = base + timedelta(
            seconds=rng.randrange(0, 9000 * 365 * 86400), microseconds=rng.randrange(10**6)
        )
        zone = timezone(timedelta(minutes=rng.randrange(-14 * 60, 14 * 60 + 1)))
        out.append(at.astimezone(zone) if at.year < 9999 else at)
    return out


def test_bound_text_is_sqlalchemys_sqlite_datetime_text() -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime()._cached_bind_processor(dialect)
    reference = sqlite.DATETIME().bind_processor(dialect)
    assert ours is not None and reference is not None
    for value in _times():
        expected = reference(value.astimezone(UTC).replace(tzinfo=None))
        assert ours(value) == expected, value
    assert ours(None) is None


def test_read_text_round_trips_as_utc() -> None:
    dialect = sqlite.dialect()
    bind = UTCDateTime()._cached_bind_processor(dialect)
    read = UTCDateTime()._cached_result_processor(dialect, None)
    assert bind is not None and read is not None
    for value in _times():
        back = read(bind(value))
        assert back == value and back.tzinfo is UTC, value
    assert read(None) is None


def test_reads_what_sql_writes_itself() -> None:
    read = UTCDateTime()._cached_result_processor(sqlite.dialect(), None)
    assert read is not None
    assert read("2026-12-06 08:17:42") == datetime(2026, 12, 6, 8, 17, 42, tzinfo=UTC)
    assert read("2026-12-06") == datetime(2026, 12, 6, tzinfo=UTC)
    assert read("2026-12-06T10:17:42+02:00") == datetime(2026, 12, 6, 8, 17, 42, tzinfo=UTC)


def test_naive_datetimes_are_refused() -> None:
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        bind = UTCDateTime()._cached_bind_processor(dialect)
        assert bind is not None
        with pytest.raises(ValueError, match="naive"):
            bind(datetime(2026, 1, 1))
