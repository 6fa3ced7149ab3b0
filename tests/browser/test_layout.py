"""Signed-in pages measured in Chromium at a laptop's and a phone's width: nothing makes the page
scroll sideways, nor a box in it at a laptop's width, and long documents stay a readable height."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import OpenPage, errors_of
from tests.browser.harness import LiveServer
from tests.browser.test_signup_flow import sign_in, sign_up, verify

pytestmark = pytest.mark.browser

LAPTOP, PHONE = (1280, 900), (390, 844)

# The page's width and height, and the boxes in <main> that scroll sideways (a table in
# .table-scroll wider than the box), each named by its first column's header.
MEASURE = """() => {
  const root = document.documentElement;
  const scrolling = Array.from(document.querySelectorAll('main *'))
    .filter((el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)
                    && el.scrollWidth > el.clientWidth)
    .map((el) => ({header: (el.querySelector('th') || el).textContent.trim().slice(0, 40),
                   width: el.scrollWidth, box: el.clientWidth}));
  return {width: root.scrollWidth, height: root.scrollHeight, scrolling};
}"""


async def measure(page: Page) -> dict[str, Any]:
    result = await page.evaluate(MEASURE)
    assert isinstance(result, dict)
    return result


async def owner_of_a_workspace(open_page: OpenPage, server: LiveServer) -> Page:
    """A new owner, signed in at a laptop's width, with a workspace of their own."""
    run = uuid.uuid4().hex[:8]
    email = f"layout-{run}@example.com"
    page = await open_page(width=LAPTOP[0], height=LAPTOP[1])
    await page.goto("/signup")
    await sign_up(page, "Noor Khalil", email, "+971504567890")
    await verify(page, server, email)
    await sign_in(page, email)
    await page.get_by_label("Business name").fill(f"Layout Dates {run}")
    await page.get_by_role("button", name="Create workspace").click()
    await expect(page.get_by_role("status")).to_contain_text("Workspace created")
    return page


async def test_the_record_of_processing_fits_a_laptop_and_a_phone(
    open_page: OpenPage, live_server: LiveServer
) -> None:
    # Its categories were a table of seven columns kept on one line each: 15,084 px wide in a
    # 1,200 px box at 1,280 px (12,067 in 358 at 390); wrapped, it was 27,000 px tall.
    page = await owner_of_a_workspace(open_page, live_server)
    doc = await (await page.request.get("/api/v1/workspace/record-of-processing")).json()
    for width, height in (LAPTOP, PHONE):
        await page.set_viewport_size({"width": width, "height": height})
        await page.goto("/workspace/record-of-processing")
        size = await measure(page)
        assert size["width"] <= width, f"the page scrolls sideways at {width} px: {size}"
        # On a phone the retention classes (a table of sentences) may scroll inside their box.
        allowed = {"Class"} if width == PHONE[0] else set()
        boxes = [s for s in size["scrolling"] if s["header"] not in allowed]
        assert boxes == [], f"a box scrolls sideways at {width} px: {boxes}"
        if width == LAPTOP[0]:
            assert size["height"] <= 12_000, f"the page is {size['height']} px tall"

    # All of the record is there: a heading and the same facts for every category, the fields
    # one click away, and the retention classes and recipients it names are on the page.
    categories = page.locator(".ropa-category")
    await expect(categories.get_by_role("heading", level=4)).to_have_count(len(doc["categories"]))
    terms = ["Personal", "Encrypted", "Purposes", "Lawful bases", "Retention", "Recipients"]
    for cat in doc["categories"]:
        block = categories.filter(has=page.get_by_role("heading", name=cat["category"], exact=True))
        await expect(block.get_by_role("term")).to_have_text([*terms, "Fields"])
    name = categories.filter(has=page.get_by_role("heading", name="user.name", exact=True))
    await name.get_by_text("fields in").click()
    await expect(name.get_by_role("listitem").filter(has_text="users")).to_be_visible()
    targets = await page.evaluate(
        "() => Array.from(document.querySelectorAll('main a[href^=\"#\"]'))"
        ".filter((a) => !document.getElementById(a.hash.slice(1))).map((a) => a.hash)"
    )
    assert targets == [], f"links to nowhere: {targets}"
    assert errors_of(page) == []


async def test_the_sessions_table_fits_the_account_page(
    open_page: OpenPage, live_server: LiveServer
) -> None:
    # Kept on one line, its five columns were 1,233 px in a 1,200 px box at 1,280 px.
    page = await owner_of_a_workspace(open_page, live_server)
    for width, height in (LAPTOP, PHONE):
        await page.set_viewport_size({"width": width, "height": height})
        await page.goto("/account")
        await expect(page.get_by_role("heading", name="Where you are signed in")).to_be_visible()
        size = await measure(page)
        assert size["width"] <= width, f"/account scrolls sideways at {width} px: {size}"
        if width == LAPTOP[0]:  # on a phone the table may scroll inside its own box
            assert size["scrolling"] == [], f"a box scrolls sideways at {width} px: {size}"
    assert errors_of(page) == []


async def test_the_audit_logs_filters_are_a_form_not_a_search_pill(
    open_page: OpenPage, live_server: LiveServer
) -> None:
    # As role="search", Pico drew the five fields and the button as one rounded bar: inputs
    # ~190 px wide, dates cut to "mm/dd," and a Filter button 165 px tall.
    page = await owner_of_a_workspace(open_page, live_server)
    for width, height in (LAPTOP, PHONE):
        await page.set_viewport_size({"width": width, "height": height})
        await page.goto("/workspace/audit")
        filters = page.locator("#audit-filters")
        await expect(filters).to_be_visible()
        button = await filters.get_by_role("button", name="Filter").bounding_box()
        assert button is not None and button["height"] < 80, button
        for label in ("From", "To"):
            field = await filters.get_by_label(label).bounding_box()
            assert field is not None and field["width"] >= 250, (label, width, field)
    await expect(page.get_by_role("form", name="Filter the audit log")).to_be_visible()
    assert errors_of(page) == []
