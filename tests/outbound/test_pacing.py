"""The sender's schedule: a number's rate and each recipient's pair rate (burst 5, then one per
6 s), in one process and shared through Redis by every worker process."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectx.outbound.pacer import (
    BURST_S,
    PAIR_INTERVAL_S,
    Claimed,
    Lane,
    Pacer,
    RedisSchedule,
    Schedule,
)
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
    # From before the first admission: the schedule's clock starts inside it, and a slow first
    # call (a loaded machine) counted against the bound failed it (24 slots in 20.6 ms "since").
    started = time.monotonic()
    first, _ = await schedule.admit([f"r{n}" for n in range(200)])
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
    # (a pair's next time is a monotonic reading plus 6 s five times: rounding may leave ~1e-12)
    assert all(PAIR_INTERVAL_S - 0.5 < d <= PAIR_INTERVAL_S + 1e-6 for d in decisions[5:7])


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
    assert all(PAIR_INTERVAL_S - 1.0 < d <= PAIR_INTERVAL_S + 1e-6 for d in decisions[5:])
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


async def test_numbers_share_the_places_in_flight() -> None:
    """Every place in flight taken: while numbers wait for one, each gets its share. (One event
    woke them all and the first to wait took every free place, every time: the last numbers'
    claimed rows waited until their lease ran short and went back unsent.) A number alone may
    use every place."""
    pacer = Pacer(max_inflight=6)
    sent: list[int] = []
    most: dict[int, int] = {}

    class Endpoint:  # Meta answering in 5 ms: 1,200/s through 6 places
        async def send(self, body: bytes) -> dict[str, Any]:
            await asyncio.sleep(0.005)
            return {"messages": [{"id": "wamid.x"}]}

    pacer._add = lambda outcome: sent.append(outcome.row.channel_id)  # type: ignore[method-assign]
    lease = datetime.now(UTC) + timedelta(hours=1)

    async def number(channel_id: int, rows: int) -> None:
        endpoint: Any = Endpoint()
        lane = Lane(channel_id, endpoint=endpoint, rate=5000, schedule=Schedule(5000))
        ready = deque(
            Claimed(
                n,
                1,
                channel_id,
                1,
                None,
                "message",
                f"{channel_id}-{n}",
                None,
                1,
                lease,
                "t",
                b"{}",
            )
            for n in range(rows)
        )
        pacer.sending += 1  # as run_channel does
        try:
            while ready:
                await pacer._admit(lane, ready)
                most[channel_id] = max(most.get(channel_id, 0), lane.inflight)
        finally:
            pacer.sending -= 1

    try:
        await asyncio.wait_for(number(9, 60), 30)  # alone: every place
        assert most[9] == 6
        sent.clear()
        await asyncio.wait_for(asyncio.gather(*(number(c, 200) for c in (1, 2, 3))), 30)
    finally:
        for task in pacer._senders:
            task.cancel()
    counts = Counter(sent[:300])
    assert min(counts[c] for c in (1, 2, 3)) >= 90, counts
