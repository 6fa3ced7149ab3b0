"""Fixtures for browser tests (``@pytest.mark.browser``; ``make test-browser``).

- ``live_server``: the real ``connectx serve`` in a subprocess (see :mod:`tests.browser.harness`),
  once per session, with a real SMTP peer; ``live_server.mailed_link(to, "/verify")``.
- ``browser``: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright, headless.
- ``open_page``: ``await open_page()`` gives a page in a fresh browser context (its own cookies:
  one per person in a test), ``open_page(width=360)`` a phone-sized one. When the test fails,
  a screenshot of every page it opened is kept under ``test-artifacts/browser/``. Pages also
  collect console errors and uncaught exceptions (``errors_of(page)``): a page that breaks the
  Content-Security-Policy or throws fails the test.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.browser.harness import ARTIFACTS, LiveServer
from tests.support.smtp import SmtpServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_TIMEOUT_MS = 10_000

OpenPage = Callable[..., Awaitable[Page]]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def smtp_peer() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def live_server(
    smtp_peer: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveServer]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # screenshots and logs of this run only
    server = LiveServer(
        data_dir=tmp_path_factory.mktemp("live-server"),
        log_path=ARTIFACTS / "server.log",
        smtp=smtp_peer,
    )
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run scripts/ensure-chromium.sh (make test-browser does)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


_ERRORS_KEY = "_connectx_errors"


def errors_of(page: Page) -> list[str]:
    """Console errors and uncaught exceptions seen on ``page`` so far."""
    return list(getattr(page, _ERRORS_KEY, []))


@pytest.fixture
async def open_page(
    request: pytest.FixtureRequest, browser: Browser, live_server: LiveServer
) -> AsyncIterator[OpenPage]:
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    async def _open(width: int = 1280, height: int = 900, **options: Any) -> Page:
        context = await browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": height},
            **options,
        )
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        errors: list[str] = []
        setattr(page, _ERRORS_KEY, errors)
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        page.on(
            "console",
            lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        pages.append(page)
        return page

    yield _open

    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for i, page in enumerate(pages):
            try:
                await page.screenshot(path=str(ARTIFACTS / f"{name}-{i}.png"), full_page=True)
            except Exception as exc:  # a closed or crashed page: keep going
                print(f"no screenshot of page {i}: {exc}")
        shutil.copy(live_server.log_path, ARTIFACTS / f"{name}-server.log")
    for context in contexts:
        await context.close()
