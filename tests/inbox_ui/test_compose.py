"""Replying from the inbox: text, template outside the window, reactions, failures shown with
Meta's reason and a retry where it helps. Real platform and simulator over HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from connectx.kit import clock
from tests.outbound.conftest import World
from tests.support.factories import signed_in
from tests.web.html import parse

ANA = "16505550101"
ANA_E164 = "+16505550101"
HTMX = {"hx-request": "true", "accept": "text/html"}


async def bubble(world: World, conv: int, message_id: int) -> Any:
    r = await world.owner.get(f"/inbox/c/{conv}/m/{message_id}", headers=HTMX)
    assert r.status_code == 200, r.text
    return parse(r.text).find("article")


async def until_status(world: World, conv: int, message_id: int, status: str) -> Any:
    async with asyncio.timeout(15):
        while True:
            article = await bubble(world, conv, message_id)
            if article.attrs["data-status"] == status:
                return article
            await asyncio.sleep(0.05)


async def test_reply_from_the_inbox_goes_out_and_its_ticks_reach_read(world: World) -> None:
    wamid_in = await world.customer_says(ANA, "Where is my parcel?")
    conv = await world.conversation_of(ANA_E164)
    r = await world.owner.post(
        f"/inbox/c/{conv}/messages",
        data={"text": "On its way: https://track.example/A-1", "reply_to": wamid_in},
        headers=HTMX,
    )
    assert r.status_code == 200, r.text
    article = parse(r.text).find("article")
    assert "msg-out" in article.attrs["class"]
    assert article.find("blockquote").text == "Customer Where is my parcel?"
    message_id = int(article.attrs["data-message"])
    [sent] = await world.sent(1, kind="message")
    assert sent["body"]["text"]["body"] == "On its way: https://track.example/A-1"
    assert sent["body"]["text"]["preview_url"] is True
    read = await until_status(world, conv, message_id, "read")
    assert read.find("span", **{"class": "tick tick-read"}).text == "✓✓Read"


async def test_template_outside_the_window_with_parameters_and_preview(world: World) -> None:
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    r = await world.owner.post(f"/api/v1/channels/{world.channel['id']}/templates/sync")
    assert r.status_code == 200, r.text
    clock.advance(timedelta(hours=25))
    await world.sim.post("/_sim/clock", json={"advance_s": 0})
    world.owner.csrf = await signed_in(world.owner.client, world.owner.email)  # a day later
    r = await world.owner.get(f"/inbox/c/{conv}", headers=HTMX)
    assert r.status_code == 200, r.text
    composer = parse(r.text).find("div", id="composer")
    assert not composer.find_all("textarea", id="reply-text")  # notes stay possible
    options = [
        o.attrs["value"] for o in composer.find("select", id="template-key").find_all("option")
    ]
    assert "order_update|en_US" in options
    fields = await world.owner.get(
        f"/inbox/c/{conv}/template", params={"key": "order_update|en_US"}, headers=HTMX
    )
    names = {i.attrs["name"] for i in parse(fields.text).find_all("input")}
    assert names == {"body.1", "body.2", "button.0"}
    preview = await world.owner.post(
        f"/inbox/c/{conv}/template/preview",
        data={"key": "order_update|en_US", "body.1": "Ana"},
        headers=HTMX,
    )
    assert "Ana" in preview.text and "Still to fill in: body {{2}}" in preview.text
    # Missing parameters: a clear 422 naming them, nothing queued.
    r = await world.owner.post(
        f"/inbox/c/{conv}/template",
        data={"key": "order_update|en_US", "body.1": "Ana"},
        headers=HTMX,
    )
    assert r.status_code == 422 and "body {{2}}" in r.json()["detail"]
    # Free text is refused with the reason.
    r = await world.owner.post(f"/inbox/c/{conv}/messages", data={"text": "late"}, headers=HTMX)
    assert r.status_code == 422 and "24-hour" in r.json()["detail"]
    r = await world.owner.post(
        f"/inbox/c/{conv}/template",
        data={"key": "order_update|en_US", "body.1": "Ana", "body.2": "A-1", "button.0": "A-1"},
        headers=HTMX,
    )
    assert r.status_code == 200, r.text
    article = parse(r.text).find("article")
    assert "order_update" in article.text and "Ana" in article.text and "A-1" in article.text
    [sent] = await world.sent(1, kind="message")
    assert sent["body"]["template"]["name"] == "order_update"


async def test_failed_message_shows_metas_reason_and_retry_only_when_it_helps(
    world: World,
) -> None:
    await world.customer_says(ANA, "hi")
    conv = await world.conversation_of(ANA_E164)
    r = await world.owner.post(f"/inbox/c/{conv}/messages", data={"text": "one"}, headers=HTMX)
    first = int(parse(r.text).find("article").attrs["data-message"])
    r = await world.owner.post(f"/inbox/c/{conv}/messages", data={"text": "two"}, headers=HTMX)
    second = int(parse(r.text).find("article").attrs["data-message"])
    sent = await world.sent(2, kind="message")
    by_text = {s["body"]["text"]["body"]: s["wamid"] for s in sent}
    await until_status(world, conv, first, "read")
    await until_status(world, conv, second, "read")
    # Meta reports failures after the fact (statuses only move forward, so use new messages).
    r = await world.owner.post(f"/inbox/c/{conv}/messages", data={"text": "three"}, headers=HTMX)
    third = int(parse(r.text).find("article").attrs["data-message"])
    r = await world.owner.post(f"/inbox/c/{conv}/messages", data={"text": "four"}, headers=HTMX)
    fourth = int(parse(r.text).find("article").attrs["data-message"])
    sent = await world.sent(4, kind="message")
    by_text = {s["body"]["text"]["body"]: s["wamid"] for s in sent}
    await world.sim.post(
        "/_sim/statuses",
        json={
            "wamid": by_text["three"],
            "status": "failed",
            "code": 131026,
            "title": "Message undeliverable",
        },
    )
    await world.sim.post(
        "/_sim/statuses",
        json={
            "wamid": by_text["four"],
            "status": "failed",
            "code": 130429,
            "title": "Rate limit hit",
        },
    )
    await world.settle()
    undeliverable = await until_status(world, conv, third, "failed")
    assert "Message undeliverable (error 131026)" in undeliverable.text
    assert "could not deliver" in undeliverable.text
    assert not undeliverable.find_all("button", **{"hx-post": f"/inbox/c/{conv}/m/{third}/retry"})
    limited = await until_status(world, conv, fourth, "failed")
    assert "Rate limit hit" in limited.text
    retry = limited.find("button", **{"hx-post": f"/inbox/c/{conv}/m/{fourth}/retry"})
    assert retry.text == "Send again"
    r = await world.owner.post(f"/inbox/c/{conv}/m/{fourth}/retry", headers=HTMX)
    assert r.status_code == 200, r.text
    again = parse(r.text).find("article")
    assert int(again.attrs["data-message"]) != fourth and "four" in again.text
    r = await world.owner.post(f"/inbox/c/{conv}/m/{third}/retry", headers=HTMX)
    assert r.status_code == 422


async def test_reacting_to_the_customers_message(world: World) -> None:
    await world.customer_says(ANA, "Thanks!")
    conv = await world.conversation_of(ANA_E164)
    thread = parse((await world.owner.get(f"/inbox/c/{conv}", headers=HTMX)).text)
    incoming = thread.find("article")
    mid = int(incoming.attrs["data-message"])
    r = await world.owner.post(f"/inbox/c/{conv}/m/{mid}/react", data={"emoji": "👍"}, headers=HTMX)
    assert r.status_code == 200, r.text
    assert parse(r.text).find("p", **{"class": "reactions"}).text == "👍"
    [sent] = await world.sent(1, kind="message")
    assert sent["body"]["reaction"]["emoji"] == "👍"
    # Our own message cannot be reacted to from here.
    r = await world.owner.post(f"/inbox/c/{conv}/messages", data={"text": "ok"}, headers=HTMX)
    mine = int(parse(r.text).find("article").attrs["data-message"])
    r = await world.owner.post(
        f"/inbox/c/{conv}/m/{mine}/react", data={"emoji": "👍"}, headers=HTMX
    )
    assert r.status_code == 422


async def test_attachment_goes_out_as_its_kind_and_a_missing_file_is_a_clear_422(
    world: World,
) -> None:
    await world.customer_says(ANA, "Send me the invoice")
    conv = await world.conversation_of(ANA_E164)
    pdf = b"%PDF-1.4\n" + b"0" * 200
    r = await world.owner.post(
        f"/inbox/c/{conv}/attachments",
        files={"file": ("invoice.pdf", pdf, "application/pdf")},
        data={"caption": "Your invoice"},
        headers=HTMX,
    )
    assert r.status_code == 200, r.text
    article = parse(r.text).find("article")
    assert "type-document" in article.attrs["class"]
    assert "Document sent" in article.text and "Your invoice" in article.text
    [sent] = await world.sent(1, kind="message")
    assert sent["body"]["type"] == "document"
    assert sent["body"]["document"]["caption"] == "Your invoice"
    r = await world.owner.post(f"/inbox/c/{conv}/attachments", data={"caption": "x"}, headers=HTMX)
    assert r.status_code == 422 and "Choose a file" in r.json()["detail"]
