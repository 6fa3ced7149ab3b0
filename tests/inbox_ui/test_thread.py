"""The inbox page and thread over HTTP: every message type rendered from real processed webhooks
(the corpus), effects folded into their targets, nothing unsafe in customer text."""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx

from tests.inbox.support import customer_message
from tests.web.html import Element, parse
from tests.whatsapp.support import batch, corpus, delivered, drain, load, messages_of
from tests.workspaces.helpers import Caller

BROWSER = {"accept": "text/html,application/xhtml+xml"}
HTMX = {"hx-request": "true", "accept": "text/html"}


def now_stamped(payload: dict[str, Any], offset: int = 0) -> dict[str, Any]:
    """The payload with its messages sent now (so the 24-hour window is open)."""
    out = copy.deepcopy(payload)
    for i, m in enumerate(messages_of(out)):
        m["timestamp"] = str(int(time.time()) + offset + i)
    return out


async def conversation_id(owner: Caller) -> int:
    items = (await owner.get("/api/v1/conversations")).json()["items"]
    assert items, "no conversation"
    return int(items[0]["id"])


async def test_every_message_type_renders_in_the_thread(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    names = [*corpus("message_"), "effect_reaction", "effect_edit", *corpus("system_")]
    await delivered(client, batch(*[load(n) for n in names]))
    await drain()
    cid = await conversation_id(owner)
    r = await owner.get(f"/inbox/c/{cid}", headers=BROWSER)
    assert r.status_code == 200, r.text
    page = parse(r.text)
    messages = page.find("div", id="messages")
    articles = messages.find_all("article")
    types = {a.attrs["class"].split()[2] for a in articles}
    # Effects (reaction, edit, revoke) are folded into the messages they name.
    assert not {"type-reaction", "type-edit", "type-revoke"} & types
    for kind in (
        "text",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "order",
        "system",
        "unsupported",
    ):
        assert f"type-{kind}" in types, kind
    text = messages.text
    assert "Voice message" in text
    assert "Forwarded" in text
    assert "Order" in text
    assert "Open map" in text
    # Inbound media goes through the workspace-only media endpoint (pending until downloaded).
    assert "downloading" in text or page.find_all("img", **{"class": "media-img"})
    # The reaction and the edit show on the message they name.
    (first,) = [
        a for a in articles if any("parcel" in p.text for p in a.find_all("p", **{"class": "text"}))
    ]
    assert first.find("p", **{"class": "reactions"}).text == "👍"
    assert "Edited" in first.text
    # A revoke erases it; the thread says so.
    await delivered(client, load("effect_revoke"))
    await drain()
    page = parse((await owner.get(f"/inbox/c/{cid}", headers=HTMX)).text)
    (gone,) = [a for a in page.find_all("article") if a.attrs["id"] == first.attrs["id"]]
    assert "This message was deleted." in gone.text and "parcel" not in gone.text


async def test_customer_text_is_escaped_and_links_are_safe(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    payload = load("message_text")
    body = (
        "<script>alert(1)</script> see https://shop.example/orders?id=7&x=1. "
        "and javascript:alert(2)"
    )
    messages_of(payload)[0]["text"]["body"] = body
    await delivered(client, payload)
    await drain()
    cid = await conversation_id(owner)
    r = await owner.get(f"/inbox/c/{cid}", headers=HTMX)
    assert r.status_code == 200
    assert "<script>alert" not in r.text
    assert "&lt;script&gt;" in r.text
    link = parse(r.text).find("p", **{"class": "text"}).find("a")
    assert link.attrs["href"] == "https://shop.example/orders?id=7&x=1"
    assert "noopener" in link.attrs["rel"] and link.attrs["target"] == "_blank"
    assert 'href="javascript' not in r.text


async def test_inbox_page_lists_conversations_and_opens_one(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, now_stamped(load("message_text")))
    await drain()
    r = await owner.get("/inbox", headers=BROWSER)
    assert r.status_code == 200, r.text
    page = parse(r.text)
    row = page.find("ul", id="rows").find("li")
    assert "Sheena Nelson" in row.text
    assert "Hello, is my order on its way?" in row.text
    cid = row.attrs["data-conversation"]
    # The row opens the thread in place (htmx) and is a plain link without JavaScript.
    link = row.find("a")
    assert link.attrs["href"] == f"/inbox/c/{cid}" and link.attrs["hx-target"] == "#thread"
    thread = await owner.get(f"/inbox/c/{cid}", headers=HTMX)
    assert thread.status_code == 200
    assert "<html" not in thread.text  # a fragment
    assert parse(thread.text).find("textarea", id="reply-text")
    # The layout's navigation leads to the inbox.
    assert page.find("a", href="/inbox").text == "Inbox"
    # The page carries the PWA manifest.
    assert page.find("link", rel="manifest").attrs["href"] == "/manifest.webmanifest"


async def test_a_conversation_opened_directly_loads_the_list_and_bell_after_the_page(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, now_stamped(load("message_text")))
    await drain()
    cid = await conversation_id(owner)
    r = await owner.get(f"/inbox/c/{cid}?status=all", headers=BROWSER)
    assert r.status_code == 200, r.text
    page = parse(r.text)
    # The thread is in the page; opening it read it.
    assert page.find("div", id=f"thread-{cid}").find("textarea", id="reply-text")
    # The list and the bell are fetched by the page once it has loaded (htmx "load").
    rows = page.find("ul", id="rows")
    assert rows.attrs["hx-trigger"] == "load" and not _rows(rows)
    assert rows.attrs["hx-get"] == "/inbox/list?status=all&view=all"
    listed = parse((await owner.get(rows.attrs["hx-get"], headers=HTMX)).text)
    (row,) = _rows(listed)
    assert row.attrs["data-conversation"] == str(cid) and "unread" not in row.attrs["class"]
    bell = page.find("details", id="bell")
    assert bell.attrs["hx-trigger"] == "load, refresh"
    assert not bell.find_all("div", **{"class": "bell-menu"})
    loaded = parse((await owner.get(bell.attrs["hx-get"], headers=HTMX)).text)
    assert loaded.find("summary").attrs["aria-label"] == "Notifications, 0 unread"
    # The inbox page itself still has its rows in it.
    page = parse((await owner.get("/inbox?status=all", headers=BROWSER)).text)
    assert [li.attrs["data-conversation"] for li in _rows(page)] == [str(cid)]


async def test_load_more_brings_the_next_page_of_the_same_filters(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    people = [customer_message(f"Person {i:02d}", f"1650555{i:04d}") for i in range(32)]
    await delivered(client, batch(*people))
    await drain()
    page = parse((await owner.get("/inbox?status=all", headers=BROWSER)).text)
    first = _rows(page)
    assert len(first) == 30
    more = page.find("li", **{"class": "load-more"}).find("button").attrs["hx-get"]
    assert "channel=" not in more and "unread=" not in more and "status=all" in more
    r = await owner.get(more, headers=HTMX)
    assert r.status_code == 200, r.text
    rest = _rows(parse(r.text))
    assert len(rest) == 2
    seen = [li.attrs["data-conversation"] for li in first + rest]
    assert len(set(seen)) == 32


def _rows(html: Element) -> list[Element]:
    return [li for li in html.find_all("li") if "data-conversation" in li.attrs]


async def test_outside_the_window_the_composer_offers_templates_only(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("message_text"))  # sent in January: the window is closed
    await drain()
    cid = await conversation_id(owner)
    page = parse((await owner.get(f"/inbox/c/{cid}", headers=HTMX)).text)
    composer = page.find("div", id="composer")
    assert not composer.find_all("textarea", id="reply-text")  # notes stay possible
    assert "only an approved template can be sent" in composer.text


async def test_unknown_conversation_and_bad_filters_are_clear_4xx(
    owner: Caller, channel: dict[str, Any]
) -> None:
    r = await owner.get("/inbox/c/999999", headers=HTMX)
    assert r.status_code == 404
    assert "conversation" in r.json()["detail"]
    r = await owner.get("/inbox/list?status=bogus", headers=HTMX)
    assert r.status_code == 422
    r = await owner.get("/inbox/list?cursor=nonsense", headers=HTMX)
    assert r.status_code == 422


async def test_the_inbox_needs_a_signed_in_member(client: httpx.AsyncClient) -> None:
    r = await client.get("/inbox", headers=BROWSER)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/signin?next=%2Finbox")


async def test_pwa_manifest_and_service_worker(client: httpx.AsyncClient) -> None:
    manifest = (await client.get("/manifest.webmanifest")).json()
    assert manifest["start_url"] == "/inbox" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        assert (await client.get(icon["src"])).status_code == 200
    sw = await client.get("/sw.js")
    assert sw.status_code == 200
    assert sw.headers["content-type"].startswith("text/javascript")
    # It caches static assets only: never pages, API answers or media.
    assert '"/static/"' in sw.text and "__VERSION__" not in sw.text


async def test_list_views_search_and_unread(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, now_stamped(load("message_text")))
    await drain()

    async def names(**query: str) -> list[str]:
        r = await owner.get("/inbox/list", params=query, headers=HTMX)
        assert r.status_code == 200, r.text
        rows = [li for li in parse(r.text).find_all("li") if "data-conversation" in li.attrs]
        return [li.find("span", **{"class": "row-name"}).text for li in rows]

    assert await names(view="unassigned") == ["Sheena Nelson"]
    assert await names(view="mine") == []
    assert await names(q="+1 650 555 1234") == ["Sheena Nelson"]
    assert await names(q="+1 650 555 9999") == []
    assert await names(unread="true") == ["Sheena Nelson"]  # nobody opened it yet
    r = await owner.get("/inbox/list", params={"view": "nobody"}, headers=HTMX)
    assert r.status_code == 422 and "view" in r.json()["detail"]
    page = parse((await owner.get("/inbox", headers=BROWSER)).text)
    assert page.find("input", id="search").attrs["name"] == "q"
    assert page.find("li", **{"class": "row status-open unread"}).find("span", **{"class": "badge"})


async def test_the_panel_shows_a_username_as_whatsapp_gives_it(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    # Meta sends the handle with its "@" ("@quiet"); the panel added another: "@@quiet".
    await delivered(client, now_stamped(load("identity_bsuid_only")))
    await drain()
    cid = await conversation_id(owner)
    panel = parse((await owner.get(f"/inbox/c/{cid}/panel", headers=HTMX)).text)
    assert "@quiet" in panel.text and "@@" not in panel.text
