"""The sender's schedule: a number's rate and each recipient's pair rate (burst 5, then one per
6 s), in one process and shared through Redis by every worker process."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectx.outbound.pacer import BURST_S, PAIR_INTERVAL_S, RedisSchedule, Schedule
from tests.jobs.processes import REDIS_URL, reachable


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    if not reachable(REDIS_URL, 6379):
        pytest.fail(f"Redis is not reachable at {REDIS_URL} (see ../shared/reference/services.md)")
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


async def test_each_tick_takes_every_slot_due_and_no_more() -> None:
    schedule = Schedule(1000)
    first, _ = await schedule.admit([f"r{n}" for n in range(200)])
    started = time.monotonic()
    time.sleep(0.02)
    later, wait = await schedule.admit([f"s{n}" for n in range(200)])
    elapsed = time.monotonic() - started
    # A burst of BURST_S at first, then one slot per millisecond: nothing lost, nothing extra.
    assert BURST_S * 1000 <= len(first) <= BURST_S * 1000 + 1
    assert 0.02 * 1000 - 2 <= len(later) <= elapsed * 1000 + 2
    assert 0.0 < wait <= 0.001


async def test_pair_rate_defers_the_sixth_message_to_one_person() -> None:
    schedule = Schedule(1000)
    decisions, _ = await schedule.admit(["ana"] * 7 + ["ben"])
    assert decisions[:5] == [0.0] * 5 and decisions[7] == 0.0
    assert all(PAIR_INTERVAL_S - 0.5 < d <= PAIR_INTERVAL_S for d in decisions[5:7])


async def test_redis_schedule_shares_the_pair_rate_and_the_numbers_rate_across_workers(
    redis: Any,
) -> None:
    prefix = f"cxtest{secrets.token_hex(4)}"
    one, two = RedisSchedule(redis, prefix, 7, 1000), RedisSchedule(redis, prefix, 7, 1000)
    decisions: list[float] = []
    for worker in (one, two, one, two, one, two, one):  # two workers, one person
        found, _ = await worker.admit(["ana"])
        decisions += found
    assert decisions[:5] == [0.0] * 5
    assert all(PAIR_INTERVAL_S - 1.0 < d <= PAIR_INTERVAL_S for d in decisions[5:])
    # The pair is (business number, person): another number may write to her.
    other, _ = await RedisSchedule(redis, prefix, 8, 1000).admit(["ana"])
    assert other == [0.0]
    # One number's rate: at 5/s a slot is 200 ms (more than the catch-up allowance), so right
    # after the first worker took the slot due, the second gets none and waits for the next.
    slow_one, slow_two = RedisSchedule(redis, prefix, 9, 5), RedisSchedule(redis, prefix, 9, 5)
    taken, _ = await slow_one.admit(["a", "b", "c"])
    none, wait = await slow_two.admit(["d", "e", "f"])
    assert taken == [0.0] and none == []
    assert 0.0 < wait <= 0.2
    await redis.delete(*[k async for k in redis.scan_iter(f"{prefix}:*")])
