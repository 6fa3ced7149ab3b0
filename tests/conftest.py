"""Test harness: a real migrated database (SQLite, or PostgreSQL with
``CONNECTX_TEST_DATABASE_URL``), emptied after every test, and an HTTP client on the real app."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.smtp"]

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
TEST_PG = os.environ.get("CONNECTX_TEST_DATABASE_URL")
PG_NAME = f"cx_test_{WORKER}_{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir: Path = tmp_path_factory.mktemp("data")
    env = {
        "CONNECTX_DATA_DIR": str(data_dir),
        "CONNECTX_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "CONNECTX_LOG_JSON": "false",
        "CONNECTX_PUBLIC_URL": "http://testserver",
        "CONNECTX_RECONCILE_INTERVAL_S": "0.5",
        # Nothing beyond loopback: Graph calls of tests that do not start the simulator go to a
        # closed local port (tests that need Meta point this at `connectx simulator`).
        "CONNECTX_GRAPH_BASE_URL": "http://127.0.0.1:9",
        # Daily retention and scheduled backups would run whenever a test moves the clock a day
        # on; tests of the schedules turn them on themselves (tests/retention/test_periodic.py).
        "CONNECTX_PERIODIC_TASKS": "false",
        # Webhook events are processed in the app's own loop, where tests drive and stop the
        # processor (tests/whatsapp/test_processing_process.py tests the child process).
        "CONNECTX_PROCESSING_PROCESS": "false",
        # Every test with the app stops its job threads: 20 ms polls stop in ~60 ms (100: ~250).
        "CONNECTX_EMBEDDED_POLL_MS": "20",
    }
    if TEST_PG:
        from tests.support.databases import fresh_postgres_database

        env["CONNECTX_DATABASE_URL"] = fresh_postgres_database(TEST_PG, PG_NAME)
    else:
        env["CONNECTX_DATABASE_URL"] = f"sqlite+aiosqlite:///{data_dir / 'test.db'}"
    os.environ.update(env)
    from connectx.config import reset_settings
    from connectx.db.migrate import upgrade

    reset_settings()
    upgrade(env["CONNECTX_DATABASE_URL"])
    yield env
    if TEST_PG:
        from tests.support.databases import drop_postgres_database

        drop_postgres_database(TEST_PG, PG_NAME)


@pytest.fixture(autouse=True)
async def clean_database(environment: dict[str, str]) -> AsyncIterator[None]:
    """Every test starts from an empty (migrated) database and a fresh clock and key cache."""
    from connectx.kit import clock
    from connectx.privacy import vault

    yield
    from connectx.config import reset_settings

    reset_settings()  # after monkeypatch has put the environment back
    clock.reset()
    vault.reset_caches()
    from connectx.policies import service as policies

    policies.forget_cache()  # published versions are cached for a few seconds
    from connectx.privacy.requests import settings as privacy_request_settings

    privacy_request_settings.forget_cache()  # WhatsApp keywords per workspace
    from tests.support.databases import empty_all_tables

    await empty_all_tables()


@pytest.fixture
async def app(environment: dict[str, str]) -> AsyncIterator[object]:
    from connectx.app import create_app

    application = create_app()
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[object]:
    import httpx

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
