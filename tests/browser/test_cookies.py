"""The cookie banner in a real browser: shown until a choice, no optional cookie before consent,
none at all with Global Privacy Control, and the choice can be changed from every page."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import OpenPage, errors_of

pytestmark = pytest.mark.browser

STRICTLY_NECESSARY = {"cx_session", "cx_csrf", "cx_flash", "cx_device", "cx_consent"}
OPTIONAL = {"cx_aid", "cx_prefs"}


async def _names(page: Page) -> set[str]:
    return {c["name"] for c in await page.context.cookies()}


async def test_banner_and_no_optional_cookie_before_consent(open_page: OpenPage) -> None:
    page = await open_page()
    await page.goto("/")
    banner = page.get_by_role("region", name="Cookie choices")
    await expect(banner).to_be_visible()
    await expect(banner.get_by_role("button", name="Allow all cookies")).to_be_visible()
    await expect(banner.get_by_role("button", name="Only necessary cookies")).to_be_visible()
    for path in ("/privacy", "/signin", "/signup", "/"):
        await page.goto(path)
        assert await _names(page) <= STRICTLY_NECESSARY, path
    assert not await _names(page) & OPTIONAL

    await banner.get_by_role("button", name="Allow all cookies").click()
    await expect(page.get_by_role("status")).to_contain_text("Your cookie choices are saved")
    await expect(page.get_by_role("region", name="Cookie choices")).to_have_count(0)
    assert "cx_consent" in await _names(page)
    await page.goto("/privacy")
    assert "cx_aid" in await _names(page)  # analytics only now, after consent

    # Changed from every page's footer: analytics off, and its cookie goes.
    await page.get_by_role("contentinfo").get_by_role("link", name="Cookie settings").click()
    analytics = page.get_by_role("switch", name="Analytics")
    await expect(analytics).to_be_checked()
    await analytics.uncheck()
    await page.get_by_role("button", name="Save cookie choices").click()
    await expect(page.get_by_role("status")).to_contain_text("Your cookie choices are saved")
    await page.goto("/")
    assert "cx_aid" not in await _names(page)
    assert errors_of(page) == []


async def test_global_privacy_control_sets_no_optional_cookie(open_page: OpenPage) -> None:
    page = await open_page(extra_http_headers={"Sec-GPC": "1"})
    await page.goto("/")
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await expect(page.get_by_role("region", name="Cookie choices")).to_have_count(0)
    await page.goto("/privacy")
    await expect(page.locator("#gpc-detected")).to_be_visible()
    await page.goto("/cookies")
    await expect(page.locator("#gpc-note")).to_be_visible()
    await expect(page.get_by_role("switch", name="Analytics")).to_be_disabled()
    await page.get_by_role("button", name="Save cookie choices").click()
    await expect(page.get_by_role("status")).to_be_visible()
    for path in ("/", "/privacy", "/signin"):
        await page.goto(path)
    names = await _names(page)
    assert names <= STRICTLY_NECESSARY and not names & OPTIONAL, names
    assert errors_of(page) == []


async def test_each_banner_control_is_named_by_the_words_it_shows(open_page: OpenPage) -> None:
    # Voice control users say what they see ("click Only necessary"), so the accessible name
    # must contain the visible text (WCAG 2.5.3). "Necessary only" was "Only necessary cookies".
    page = await open_page()
    await page.goto("/")
    controls = page.get_by_role("region", name="Cookie choices").locator("button, [role=button]")
    pairs = await controls.evaluate_all(
        "(els) => els.map((el) => [el.textContent.trim(), el.getAttribute('aria-label') || ''])"
    )
    assert len(pairs) == 3
    for shown, name in pairs:
        assert shown.lower() in name.lower(), f"{shown!r} is named {name!r}"


async def test_the_banner_fits_a_phone(open_page: OpenPage) -> None:
    page = await open_page(width=360, height=740)
    await page.goto("/")
    banner = page.get_by_role("region", name="Cookie choices")
    await expect(banner).to_be_visible()
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await banner.get_by_role("button", name="Only necessary cookies").click()
    await expect(page.get_by_role("region", name="Cookie choices")).to_have_count(0)
    assert not await _names(page) & OPTIONAL
