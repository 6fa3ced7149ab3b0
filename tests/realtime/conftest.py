from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from connectx.config import reset_settings
from connectx.realtime import bus

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["local", "redis"])
def bus_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the in-process bus and again with Redis (a key prefix of its own)."""
    if request.param == "redis":
        monkeypatch.setenv("CONNECTX_REDIS_URL", REDIS_URL)
        monkeypatch.setenv("CONNECTX_REDIS_PREFIX", f"cxtest{secrets.token_hex(4)}")
    else:
        monkeypatch.delenv("CONNECTX_REDIS_URL", raising=False)
    reset_settings()
    bus.LOCAL.reset()
    yield request.param
    if request.param == "redis":
        import redis

        from connectx.config import get_settings

        prefix = get_settings().redis_prefix
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
