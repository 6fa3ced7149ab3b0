"""The privacy center in a real browser: an account holder files an erasure request, gets the
one-time code by e-mail (a real SMTP peer) and confirms it on the page."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenPage, errors_of
from tests.browser.harness import LiveServer, mail_text
from tests.browser.test_signup_flow import sign_up

pytestmark = pytest.mark.browser


async def _mailed_code(server: LiveServer, to: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        for message in reversed(server.smtp.to(to)):
            if "verification code" in str(message["Subject"]):
                match = re.search(r"\b(\d{6})\b", mail_text(message))
                if match:
                    return match.group(1)
        assert time.monotonic() < deadline, f"no code mailed; log:\n{server.log_tail(30)}"
        await asyncio.sleep(0.1)


async def test_an_account_holder_files_and_confirms_a_request(
    open_page: OpenPage, live_server: LiveServer
) -> None:
    email = f"rights-{uuid.uuid4().hex[:8]}@example.com"
    page = await open_page()
    await page.goto("/signup")
    await sign_up(page, "Layla Nasser", email, "+971503456789")

    visitor = await open_page(width=390, height=844)  # a phone-sized window, signed out
    await visitor.goto("/")
    await visitor.get_by_role("contentinfo").get_by_role("link", name="Privacy center").click()
    await expect(visitor.get_by_role("heading", level=1)).to_have_text("Privacy center")
    await expect(visitor.locator(".dpo-card").first).to_contain_text("support@connectxsaudi.com")
    await expect(visitor.get_by_role("heading", name="How long we keep data")).to_be_visible()

    await visitor.get_by_label("A ConnectX account holder").check()
    await visitor.get_by_label("What do you ask for?").select_option("erasure")
    await visitor.get_by_label("Your WhatsApp number (customers) or e-mail address").fill(email)
    await visitor.get_by_role("button", name="Send request").click()

    await expect(visitor.get_by_role("heading", level=1)).to_have_text("Confirm it is you")
    reference = (await visitor.locator("#reference").inner_text()).strip()
    assert re.fullmatch(r"R-[2-9A-Z]{8}", reference)
    code = await _mailed_code(live_server, email)
    await visitor.get_by_label("Code").fill("000000" if code != "000000" else "111111")
    await visitor.get_by_role("button", name="Confirm").click()
    await expect(visitor.get_by_role("alert")).to_contain_text("2 attempts left")
    await visitor.get_by_label("Code").fill(code)
    await visitor.get_by_role("button", name="Confirm").click()
    await expect(visitor.get_by_role("status")).to_contain_text(f"{reference}")
    await expect(visitor.get_by_role("status")).to_contain_text("is confirmed")
    # The wrong code's page answers 422, which Chromium logs; nothing else may go wrong.
    assert [e for e in errors_of(visitor) if "status of 422" not in e] == []
    assert errors_of(page) == []
