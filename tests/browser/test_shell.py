"""The web shell in a real browser: the privacy page, the landing page, error pages, assets
under the Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenPage, errors_of
from tests.browser.harness import ARTIFACTS

pytestmark = pytest.mark.browser


async def test_privacy_page_renders_the_policy(open_page: OpenPage) -> None:
    page = await open_page()
    response = await page.goto("/privacy")
    assert response is not None and response.status == 200
    await expect(page).to_have_title("Privacy Policy · ConnectX")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Privacy Policy")
    await expect(page.locator("time")).to_have_text("August 2, 2025")
    await expect(page.get_by_role("heading", level=2)).to_have_count(11)
    await expect(
        page.get_by_role("heading", name="8. What Are Your Privacy Rights?")
    ).to_be_visible()
    await expect(page.get_by_text("Right to Erasure:", exact=True)).to_be_visible()

    # The contents link to their sections.
    await (
        page.get_by_role("navigation", name="Contents")
        .get_by_role("link", name="How Can You Contact Us About This Policy?")
        .click()
    )
    await expect(page).to_have_url(f"{page.url.split('#')[0]}#section-11")
    await expect(page.get_by_role("heading", name="11. How Can You Contact Us")).to_be_in_viewport()

    dpo = page.locator(".dpo-card")
    await expect(dpo.get_by_role("link", name="support@connectxsaudi.com")).to_have_attribute(
        "href", "mailto:support@connectxsaudi.com"
    )
    await expect(dpo.locator("address")).to_contain_text("P.O. Box 341041")
    assert errors_of(page) == []


async def test_landing_page_leads_to_sign_up_and_sign_in(open_page: OpenPage) -> None:
    page = await open_page()
    await page.goto("/")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("WhatsApp")
    main = page.get_by_role("main")
    await expect(main.get_by_role("button", name="Create an account")).to_have_attribute(
        "href", "/signup"
    )
    await expect(main.get_by_role("button", name="Sign in")).to_have_attribute("href", "/signin")
    await page.get_by_role("contentinfo").get_by_role("link", name="Privacy policy").click()
    await expect(page).to_have_url(f"{page.url.rsplit('/', 1)[0]}/privacy")
    assert errors_of(page) == []


async def test_scripts_run_under_the_content_security_policy(open_page: OpenPage) -> None:
    """htmx, Alpine's CSP build and our app.js load and start; nothing is refused or throws."""
    page = await open_page()
    await page.goto("/")
    started = await page.evaluate(
        "() => ({htmx: typeof window.htmx, alpine: typeof window.Alpine,"
        " app: typeof window.ConnectX, allowEval: window.htmx && window.htmx.config.allowEval})"
    )
    assert started == {"htmx": "object", "alpine": "object", "app": "object", "allowEval": False}
    assert errors_of(page) == []


async def test_unknown_page_shows_a_friendly_404(open_page: OpenPage) -> None:
    page = await open_page()
    response = await page.goto("/no/such/page")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    await page.get_by_role("button", name="Go to the home page").click()
    await expect(page.get_by_role("button", name="Create an account")).to_be_visible()


async def test_pages_fit_a_phone_screen(open_page: OpenPage) -> None:
    page = await open_page(width=360, height=740)
    for path in ("/", "/privacy"):
        await page.goto(path)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 360px"


async def test_the_retention_schedule_wraps_to_the_page(open_page: OpenPage) -> None:
    # Its cells are sentences: kept on one line they made a table 4,600 px wide on a 1,280 px
    # screen, read by scrolling sideways inside it.
    page = await open_page(width=1280, height=900)
    for path in ("/privacy/retention", "/privacy-center"):
        await page.goto(path)
        box = page.locator(".table-scroll").filter(has_text="account_lifetime")
        sizes = await box.evaluate("(el) => [el.scrollWidth, el.clientWidth]")
        assert sizes[0] <= sizes[1], f"{path}: the schedule is {sizes[0]} px wide in {sizes[1]} px"


async def test_sign_in_looks_right_on_a_phone(open_page: OpenPage) -> None:
    """At 360 px wide (a small Android phone) the sign-in page has no horizontal scroll, its
    fields and button fit the screen, are big enough to tap and do not make phones zoom in.
    The screenshot is kept as test-artifacts/browser/signin-360.png for people to look at."""
    page = await open_page(width=360, height=740, is_mobile=True, has_touch=True)
    await page.goto("/signin")
    main = page.get_by_role("main")
    await expect(main.get_by_role("heading", level=1)).to_have_text("Sign in")
    await page.screenshot(path=str(ARTIFACTS / "signin-360.png"), full_page=True)

    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the sign-in page scrolls sideways by {overflow}px"
    controls = [
        main.get_by_label("E-mail address"),
        main.get_by_label("Password", exact=True),
        main.get_by_role("button", name="Sign in"),
    ]
    for control in controls:
        await expect(control).to_be_in_viewport()
        box = await control.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360, box
        assert box["width"] >= 240 and box["height"] >= 40, box  # easy to tap
        font = await control.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
        assert font >= 16, f"{font}px text makes phones zoom into the field"
    header = page.get_by_role("banner")
    for name in ("Sign in", "Sign up"):
        link = header.get_by_role("link", name=name).or_(header.get_by_role("button", name=name))
        await expect(link).to_be_in_viewport()
    assert errors_of(page) == []


async def test_api_reference_works_under_the_content_security_policy(open_page: OpenPage) -> None:
    page = await open_page()
    await page.goto("/docs")
    await expect(page.get_by_role("heading", name=re.compile("^ConnectX"))).to_be_visible()
    operation = page.locator(".opblock", has_text="/api/v1/me").first
    await expect(operation).to_be_visible()
    assert errors_of(page) == []


async def test_htmx_errors_are_shown_to_the_person(open_page: OpenPage) -> None:
    """htmx does not swap error responses: app.js shows the problem's detail in #notices."""
    page = await open_page()
    await page.goto("/")
    # A control like the ones pages use, processed by the page's own htmx: a state change
    # without a security token, which the server refuses with a problem+json 403.
    await page.evaluate(
        """() => {
            const button = document.createElement("button");
            button.textContent = "Create";
            button.setAttribute("hx-post", "/workspace");
            document.querySelector("main").appendChild(button);
            window.htmx.process(button);
        }"""
    )
    await page.get_by_role("button", name="Create", exact=True).click()
    alert = page.locator("#notices").get_by_role("alert")
    await expect(alert).to_contain_text("security token")
    await alert.get_by_role("button", name="Dismiss").click()
    await expect(alert).to_have_count(0)
