"""The customer phone in real headless Chromium: a person chats as a customer; their message
leaves as a signed webhook; the business's reply arrives without a reload (htmx polling under the
page's strict CSP); tapping a reply button sends the interactive reply. No console errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from connectx.simulator.app import VENDOR, create_app
from connectx.simulator.core import Simulator
from connectx.simulator.settings import build
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.simulator.support import ANA, AUTH, PNID, Receiver, V, receiver
from tests.support.served import served

pytestmark = pytest.mark.browser


@pytest.fixture
async def served_sim() -> AsyncIterator[tuple[str, Receiver]]:
    """The simulator on a real port (its webhooks to a real receiver)."""
    async with receiver() as rec:
        simulator = Simulator(build(None, {"callback_url": rec.url}))
        async with served(create_app(simulator=simulator), lifespan="auto") as url:
            yield url, rec


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run scripts/ensure-chromium.sh (make test-browser does)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


async def test_chatting_as_a_customer_in_a_browser(
    served_sim: tuple[str, Receiver], chromium: Browser
) -> None:
    if not (VENDOR / "htmx.min.js").is_file():
        pytest.fail("front-end assets are missing: run make install (npm ci && npm run vendor)")
    base, rec = served_sim
    context = await chromium.new_context(base_url=base, viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    errors = watch_errors(page)
    await page.goto("/phone")
    await page.get_by_role("link", name="Ana Silva").click()
    await expect(page.get_by_text("you are Ana Silva")).to_be_visible()

    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    await page.get_by_label("Message").fill("Hello from the browser")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".msg.mine .text", has_text="Hello from the browser")).to_be_visible()
    [hook] = await rec.wait_for(1)
    assert hook.signature_valid()
    assert hook.messages()[0]["text"]["body"] == "Hello from the browser"
    url_before = page.url

    async with httpx.AsyncClient(base_url=base) as api:
        said = hook.messages()[0]["id"]
        r = await api.post(
            f"/{V}/{PNID}/messages",
            headers=AUTH,
            json={"messaging_product": "whatsapp", "status": "read", "message_id": said},
        )
        assert r.status_code == 200
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "to": ANA,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Which colour would you like?"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "blue", "title": "Blue"}},
                        {"type": "reply", "reply": {"id": "red", "title": "Red"}},
                    ]
                },
            },
        }
        r = await api.post(f"/{V}/{PNID}/messages", headers=AUTH, json=body)
        assert r.status_code == 200, r.text

    # arrives by polling, no reload
    await expect(page.get_by_text("Which colour would you like?")).to_be_visible()
    await expect(page.locator(".msg.mine .ticks.read")).to_be_visible()
    assert page.url == url_before
    assert navigations == []  # htmx posted and swapped; the page never reloaded
    await page.get_by_role("button", name="Blue").click()
    async with asyncio.timeout(10):
        while not [m for m in rec.all_messages() if m["type"] == "interactive"]:
            await asyncio.sleep(0.05)
    [reply] = [m for m in rec.all_messages() if m["type"] == "interactive"]
    assert reply["interactive"]["button_reply"] == {"id": "blue", "title": "Blue"}
    await expect(page.locator(".msg.mine .text", has_text="Blue")).to_be_visible()
    assert navigations == []
    assert errors == []
    await context.close()
