"""A web node with a broker only publishes wake-ups; when the broker is unreachable the business
change still commits and the job waits for the reconciler of a worker."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectx.config import get_settings, reset_settings
from connectx.jobs import queue, runtime
from tests.jobs.support import enqueue, job_state
from tests.support.smtp import free_port


async def test_an_unreachable_broker_does_not_lose_the_job(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CONNECTX_BROKER_URL", f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    reset_settings()
    try:
        await runtime.start_embedded(get_settings())
        rt = runtime.embedded()
        assert rt is not None and rt.kind == "rabbitmq" and rt.worker is None  # publish only
        assert queue.current_waker() is not None
        started = time.monotonic()
        job_id = await enqueue("testjobs.record", {"n": 1})
        assert time.monotonic() - started < 30
        await asyncio.sleep(0.5)
        assert await job_state(job_id) == ("pending", 0)
        assert any(f"wake-up for job {job_id} not sent" in r.getMessage() for r in caplog.records)
    finally:
        await runtime.stop_embedded()
        monkeypatch.delenv("CONNECTX_BROKER_URL")
        reset_settings()
    assert queue.current_waker() is None


async def test_an_unknown_broker_scheme_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTX_BROKER_URL", "kafka://127.0.0.1:9092")
    reset_settings()
    try:
        with pytest.raises(ValueError, match=r"must start with amqp:// .* redis://"):
            await runtime.start_embedded(get_settings())
    finally:
        monkeypatch.delenv("CONNECTX_BROKER_URL")
        reset_settings()
