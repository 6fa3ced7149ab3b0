"""The agent inbox in Chromium against the real ``connectx serve`` and ``connectx simulator``
(issue 5's "Done when"): an agent receives a simulated customer's message without reloading,
replies and watches the ticks reach read, sends a template outside the 24-hour window, and the
inbox fits a 360 px phone (screenshots kept under test-artifacts/browser/)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import OpenPage, errors_of
from tests.browser.harness import ARTIFACTS, CONNECTX, LiveServer
from tests.support.smtp import SmtpServer, free_port

pytestmark = pytest.mark.browser

ANA, BEN = "16505550101", "447700900123"
OWNER, AGENT = "demo@connectx.local", "agent@connectx.local"


@dataclass
class InboxServer(LiveServer):
    """``connectx serve`` whose Graph calls go to the simulator."""

    graph_url: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        # Once: the parent makes a new random master key on each call, and `connectx demo`
        # must seed with the server's.
        if not self.env:
            self.env = {**super().environment(), "CONNECTX_GRAPH_BASE_URL": self.graph_url}
        return self.env


@dataclass
class World:
    server: InboxServer
    sim: httpx.AsyncClient
    password: str
    channel_id: int
    screenshots: list[Path] = field(default_factory=list)

    async def customer_says(self, who: str, text: str, **extra: Any) -> str:
        r = await self.sim.post(
            f"/_sim/customers/{who}/messages", json={"type": "text", "text": text, **extra}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["wamid"])


def _start_simulator(port: int, callback: str, log: Path) -> subprocess.Popen[bytes]:
    config = log.with_suffix(".json")
    config.write_text(json.dumps({"statuses": {"progress": "read", "delay_ms": 150}}))
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                str(CONNECTX),
                "simulator",
                "--config",
                str(config),
                "--port",
                str(port),
                "--callback-url",
                callback,
                "--log-level",
                "warning",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture(scope="module")
async def world(
    smtp_peer: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = tmp_path_factory.mktemp("inbox-server")
    sim_port = free_port()
    server = InboxServer(
        data_dir=data,
        log_path=ARTIFACTS / "inbox-server.log",
        smtp=smtp_peer,
        graph_url=f"http://127.0.0.1:{sim_port}",
    )
    sim = _start_simulator(sim_port, f"{server.url}/webhooks/whatsapp", data / "simulator.log")
    try:
        await server.start()
        seeded = subprocess.run(
            [str(CONNECTX), "demo"],
            env=server.environment(),
            cwd=data,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr
        assert "simulator's demo number is connected" in seeded.stdout, seeded.stdout
        channel_id = int(seeded.stdout.rsplit("(channel ", 1)[1].split(")")[0])
        password = (data / "demo-password.txt").read_text().strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}") as client:
            for _ in range(600):
                try:
                    if (await client.get("/_sim/state")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            await _sync_templates(server.url, password, channel_id)
            yield World(server, client, password, channel_id)
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
        server.stop()


async def _sync_templates(base: str, password: str, channel_id: int) -> None:
    """The owner syncs the number's templates from Meta (the simulator) over the API."""
    async with httpx.AsyncClient(base_url=base) as owner:
        r = await owner.post("/api/v1/auth/signin", json={"email": OWNER, "password": password})
        assert r.status_code == 200, r.text
        csrf = r.json()["csrf_token"]
        r = await owner.post(
            f"/api/v1/channels/{channel_id}/templates/sync", headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 200, r.text


async def sign_in(page: Page, world: World, email: str) -> None:
    await page.goto(f"{world.server.url}/signin?next=/inbox")
    main = page.get_by_role("main")
    await main.get_by_label("E-mail address").fill(email)
    await main.get_by_label("Password", exact=True).fill(world.password)
    await main.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()
    await expect(page.locator("#live-state")).to_have_text("Live")


async def test_agent_receives_replies_and_sends_a_template_live(
    world: World, open_page: OpenPage
) -> None:
    agent = await open_page()
    await sign_in(agent, world, AGENT)
    rows = agent.get_by_role("list", name="Conversations")

    # A customer writes: the conversation appears without reloading.
    await world.customer_says(ANA, "Hello from the phone")
    row = rows.get_by_role("listitem").filter(has_text="Hello from the phone")
    await expect(row).to_be_visible()
    await row.get_by_role("link").click()
    thread = agent.get_by_role("log", name="Messages")
    await expect(thread.get_by_text("Hello from the phone")).to_be_visible()

    # A second message arrives in the open thread, live.
    await world.customer_says(ANA, "Are you there?")
    await expect(thread.get_by_text("Are you there?")).to_be_visible()

    await expect(agent.locator("#composer").get_by_text("Window closes in 2")).to_be_visible()

    # Reply; the ticks move to read as Meta (the simulator) reports.
    await agent.get_by_label("Reply to").fill("Yes! How can I help?")
    await agent.get_by_role("button", name="Send", exact=True).click()
    mine = thread.locator("article.msg-out").filter(has_text="Yes! How can I help?")
    await expect(mine).to_have_count(1)
    await expect(mine).to_have_attribute("data-status", "read", timeout=15_000)
    await expect(mine.get_by_title("Read")).to_be_visible()
    await expect(agent.get_by_label("Reply to")).to_have_value("")

    # React to the customer's message: its picker sends the emoji that was clicked.
    theirs = thread.locator("article.msg-in").filter(has_text="Are you there?")
    await theirs.locator("details.react > summary").click()
    await theirs.get_by_role("button", name="React 👍").click()
    reacted = thread.locator("article.msg-in").filter(has_text="Are you there?")
    await expect(reacted.locator("p.reactions")).to_have_text("👍")

    # Snooze until a chosen time (the agent's own clock; the page sends it as UTC).
    await agent.locator("#snooze-menu > summary").click()
    local = (datetime.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    await agent.get_by_label("or until").fill(local.strftime("%Y-%m-%dT%H:%M"))
    await agent.locator("#snooze-menu").get_by_role("button", name="Snooze").click()
    snoozed = agent.locator("#thread-snoozed time")
    await expect(snoozed).to_have_attribute("datetime", local.astimezone(UTC).isoformat())

    # Outside the 24-hour window only a template can go: pick one, fill it, see the preview.
    day_ago = str(int(time.time()) - 25 * 3600)
    await world.customer_says(BEN, "Any news on my order?", timestamp=day_ago)
    await (
        rows.get_by_role("listitem")
        .filter(has_text="Any news on my order?")
        .get_by_role("link")
        .click()
    )
    composer = agent.locator("#composer")
    await expect(composer.get_by_text("The 24-hour window is closed")).to_be_visible()
    await expect(agent.get_by_label("Reply to")).to_have_count(0)
    await composer.get_by_label("Template").select_option("order_update|en_US")
    await composer.get_by_label("Body {{1}}").fill("Ben")
    await composer.get_by_label("Body {{2}}").fill("A-42")
    await composer.get_by_label("Button “Track” link ending").fill("A-42")
    preview = composer.locator("#template-preview")
    await expect(preview).to_contain_text("Ben")
    await expect(preview).to_contain_text("A-42")
    await composer.get_by_role("button", name="Send template").click()
    sent = thread.locator("article.type-template")
    await expect(sent).to_contain_text("order_update")
    await expect(sent).to_have_attribute("data-status", "read", timeout=15_000)
    assert errors_of(agent) == []


async def test_inbox_at_phone_width(world: World, open_page: OpenPage) -> None:
    await world.customer_says(ANA, "Phone check")
    phone = await open_page(width=360, height=740)
    await sign_in(phone, world, AGENT)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the inbox scrolls sideways at 360 px ({width})"
    await phone.screenshot(path=str(ARTIFACTS / "inbox-list-360.png"), full_page=True)
    row = (
        phone.get_by_role("list", name="Conversations")
        .get_by_role("listitem")
        .filter(has_text="Phone check")
    )
    await row.get_by_role("link").click()
    thread = phone.get_by_role("log", name="Messages")
    await expect(thread.get_by_text("Phone check")).to_be_visible()
    await expect(phone.get_by_role("list", name="Conversations")).to_be_hidden()
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 360
    await phone.screenshot(path=str(ARTIFACTS / "inbox-thread-360.png"), full_page=True)
    # Back to the list; the shortcuts overlay opens with "?" and closes with Escape.
    await phone.get_by_role("link", name="Back to conversations").click()
    await expect(phone.get_by_role("list", name="Conversations")).to_be_visible()
    await phone.keyboard.press("?")
    await expect(phone.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    await phone.keyboard.press("Escape")
    await expect(phone.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    assert errors_of(phone) == []
    assert os.path.getsize(ARTIFACTS / "inbox-thread-360.png") > 0


# The search box's placeholder, measured in the box's own font, beside the room the box leaves
# for text (its width less its padding: Pico's magnifier sits in the left one).
PLACEHOLDER_FIT = """() => {
  const box = document.querySelector('#search');
  const style = getComputedStyle(box, '::placeholder');
  const canvas = document.createElement('canvas').getContext('2d');
  canvas.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const padding = parseFloat(getComputedStyle(box).paddingLeft)
    + parseFloat(getComputedStyle(box).paddingRight);
  return {text: box.placeholder, width: Math.ceil(canvas.measureText(box.placeholder).width),
          room: box.clientWidth - padding};
}"""


@pytest.mark.parametrize("size", [(1280, 900), (360, 740)])
async def test_the_search_box_shows_its_whole_placeholder(
    world: World, open_page: OpenPage, size: tuple[int, int]
) -> None:
    # "Search name or number ( / )" needed 256 px in a box with room for 252 at 1,280 px.
    agent = await open_page(width=size[0], height=size[1])
    await sign_in(agent, world, AGENT)
    search = agent.get_by_role("searchbox", name="Search by name or number")
    await expect(search).to_be_visible()
    fit = await agent.evaluate(PLACEHOLDER_FIT)
    assert fit["width"] <= fit["room"], f"the placeholder is cut off: {fit}"
    assert errors_of(agent) == []


# Where the reply box sits in its thread, and whether the composer shows all it holds.
COMPOSER_FIT = """() => {
  const thread = document.querySelector('.inbox-thread').getBoundingClientRect();
  const box = document.querySelector('#reply-text').getBoundingClientRect();
  const composer = document.querySelector('#composer');
  return {thread: thread.bottom, box: box.bottom,
          hidden: composer.scrollHeight - composer.clientHeight};
}"""


@pytest.mark.parametrize("size", [(1280, 900), (1366, 768)])
async def test_reply_box_is_whole_on_a_laptop(
    world: World, open_page: OpenPage, size: tuple[int, int]
) -> None:
    # Wide enough for the contact panel, whose attribute form is taller than the thread: the
    # composer kept shrinking with it and showed a sliver of the reply box (53 px at 1366x768).
    await world.customer_says(ANA, f"Laptop check {size[0]}")
    agent = await open_page(width=size[0], height=size[1])
    await sign_in(agent, world, AGENT)
    row = agent.get_by_role("list", name="Conversations").get_by_role("listitem")
    await row.filter(has_text=f"Laptop check {size[0]}").get_by_role("link").click()
    await expect(agent.locator("#attributes-form")).to_be_attached()  # the panel has loaded
    fit = await agent.evaluate(COMPOSER_FIT)
    assert fit["box"] <= fit["thread"], f"the reply box is cut off by the thread: {fit}"
    assert fit["hidden"] <= 1, f"the composer hides {fit['hidden']} px of itself: {fit}"
    assert errors_of(agent) == []


async def test_the_contact_button_shows_only_where_it_does_something(
    world: World, open_page: OpenPage
) -> None:
    # From 1,100 px the panel is always beside the thread: its "Contact" button did nothing
    # there (and said aria-expanded="false" beside the open panel).
    await world.customer_says(ANA, "Panel check")
    wide = await open_page(width=1280, height=900)
    await sign_in(wide, world, AGENT)
    row = wide.get_by_role("list", name="Conversations").get_by_role("listitem")
    await row.filter(has_text="Panel check").first.get_by_role("link").click()
    await expect(wide.get_by_role("complementary", name="Contact")).to_be_visible()
    await expect(wide.get_by_role("button", name="Contact", exact=True)).to_be_hidden()

    narrow = await open_page(width=1000, height=800)
    await sign_in(narrow, world, AGENT)
    row = narrow.get_by_role("list", name="Conversations").get_by_role("listitem")
    await row.filter(has_text="Panel check").first.get_by_role("link").click()
    panel = narrow.get_by_role("complementary", name="Contact")
    await expect(panel).to_be_hidden()
    await narrow.get_by_role("button", name="Contact", exact=True).click()
    await expect(panel).to_be_visible()
    assert errors_of(wide) == [] and errors_of(narrow) == []


# The inbox's form controls and buttons without an accessible name (label, aria-label,
# aria-labelledby, title, or a button's own text).
UNLABELLED = """() => Array.from(document.querySelectorAll(
  '#inbox input:not([type=hidden]), #inbox select, #inbox textarea, #inbox button, #inbox summary'
)).filter((el) => {
  const text = (s) => (s || '').trim();
  const by = el.getAttribute('aria-labelledby');
  const name = text(el.getAttribute('aria-label'))
    || (el.labels ? Array.from(el.labels).map((l) => text(l.textContent)).join('') : '')
    || (by && document.getElementById(by) ? text(document.getElementById(by).textContent) : '')
    || (['BUTTON', 'SUMMARY'].includes(el.tagName) ? text(el.textContent) : '')
    || text(el.getAttribute('title'));
  return !name;
}).map((el) => el.outerHTML.slice(0, 160))"""


async def _api_as(world: World, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=world.server.url)
    r = await client.post("/api/v1/auth/signin", json={"email": email, "password": world.password})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


async def test_assigning_to_a_second_agent_reaches_them_live(
    world: World, open_page: OpenPage
) -> None:
    """Two people in two browser contexts: the owner assigns a conversation to the agent, whose
    open inbox shows it as theirs and rings the bell, over SSE, without reloading."""
    owner = await open_page()
    agent = await open_page()
    await sign_in(owner, world, OWNER)
    await sign_in(agent, world, AGENT)
    bell = agent.locator("#bell > summary")
    await expect(bell).to_have_attribute("aria-label", "Notifications, 0 unread")

    await world.customer_says(ANA, "Who will look after me?")
    for page in (owner, agent):
        row = page.locator("#rows .row").filter(has_text="Who will look after me?")
        await expect(row).to_be_visible()
    row = owner.locator("#rows .row").filter(has_text="Who will look after me?")
    await row.get_by_role("link").click()
    await expect(owner.locator("#thread-assignee")).to_have_text("Unassigned")
    await owner.keyboard.press("a")  # triage shortcut: assign to me
    await expect(owner.locator("#thread-assignee")).to_have_text("Assigned to you")
    await owner.locator("#assign-menu > summary").click()
    await owner.locator("#assign-menu").get_by_label("Agent").select_option(label="Alex Agent")
    await owner.locator("#assign-menu").get_by_role("button", name="Assign").click()
    await expect(owner.locator("#thread-assignee")).to_have_text("Assigned to Alex Agent")

    # The agent's page, untouched since it loaded: the row says "Mine", the bell rings.
    theirs = agent.locator("#rows .row").filter(has_text="Who will look after me?")
    await expect(theirs.locator(".tag-assignee")).to_have_text("Mine")
    await expect(bell).to_have_attribute("aria-label", "Notifications, 1 unread")
    await bell.click()
    await agent.locator(".bell-items a").first.click()
    await expect(agent.locator("#thread-assignee")).to_have_text("Assigned to you")
    await expect(agent.get_by_role("log", name="Messages")).to_contain_text(
        "Who will look after me?"
    )
    assert errors_of(owner) == [] and errors_of(agent) == []


async def test_notes_canned_replies_labels_and_snooze_from_the_thread(
    world: World, open_page: OpenPage
) -> None:
    owner_api = await _api_as(world, OWNER)
    try:
        r = await owner_api.post(
            "/api/v1/canned-responses",
            json={"shortcut": "thanks", "title": "Thank you", "body": "Thank you for writing!"},
        )
        assert r.status_code in (201, 409), r.text
        r = await owner_api.post("/api/v1/labels", json={"name": "Urgent"})
        assert r.status_code in (201, 409), r.text
    finally:
        await owner_api.aclose()
    agent = await open_page()
    colleague = await open_page()
    await sign_in(agent, world, AGENT)
    await sign_in(colleague, world, OWNER)
    await world.customer_says(BEN, "I need a hand with a refund")
    for page in (agent, colleague):
        row = page.locator("#rows .row").filter(has_text="I need a hand with a refund")
        await row.get_by_role("link").click()
        await expect(page.get_by_role("log", name="Messages")).to_contain_text("refund")

    # "/tha" in the reply box offers the saved reply; Tab takes it.
    reply = agent.get_by_label("Reply to")
    await reply.press_sequentially("/tha")
    option = agent.get_by_role("option", name="/thanks Thank you")
    await expect(option).to_be_visible()
    await option.click()
    await expect(reply).to_have_value("Thank you for writing!")
    await agent.get_by_role("button", name="Send", exact=True).click()
    thread = agent.get_by_role("log", name="Messages")
    await expect(
        thread.locator("article.msg-out").filter(has_text="Thank you for writing!")
    ).to_be_visible()

    # An internal note: in the thread, and live in the colleague's open thread.
    await agent.locator(".note-compose > summary").click()
    await agent.get_by_label("Note for your team").fill("Refund approved by finance")
    await agent.get_by_role("button", name="Add note").click()
    await expect(thread.locator("article.note")).to_contain_text("Refund approved by finance")
    other = colleague.get_by_role("log", name="Messages")
    await expect(other.locator("article.note")).to_contain_text("Refund approved by finance")

    # A label, then snooze: the header changes, and so does the colleague's.
    await agent.locator("#label-menu > summary").click()
    await agent.locator("#label-menu").get_by_label("Urgent").check()
    await expect(agent.locator(".thread-head .label-chips")).to_have_text("Urgent")
    await expect(colleague.locator(".thread-head .label-chips")).to_have_text("Urgent")
    await agent.locator("#snooze-menu > summary").click()
    await agent.locator("#snooze-menu").get_by_label("Snooze for").select_option(label="1 day")
    await agent.locator("#snooze-menu").get_by_role("button", name="Snooze").click()
    await expect(agent.locator("#thread-status")).to_have_text("pending")
    await expect(colleague.locator("#thread-status")).to_have_text("pending")
    await expect(colleague.locator("#thread-snoozed")).to_be_visible()
    assert await agent.evaluate(UNLABELLED) == []  # every control of the inbox has a name
    assert errors_of(agent) == [] and errors_of(colleague) == []
