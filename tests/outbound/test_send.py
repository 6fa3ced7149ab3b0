"""Sending through the API, the outbox and the pacer to the real simulator over HTTP."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from connectx.kit import clock
from tests.outbound.conftest import World
from tests.workspaces.helpers import api_key, bearer

ANA = "16505550101"
ANA_E164 = "+16505550101"


async def reply(
    world: World, conv: int, body: dict[str, Any], key: str | None = None, auth: Any = None
) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    if auth:
        return await world.owner.client.post(
            f"/api/v1/conversations/{conv}/messages", json=body, headers={**headers, **auth}
        )
    return await world.owner.post(
        f"/api/v1/conversations/{conv}/messages", json=body, headers=headers
    )


async def test_text_reply_goes_out_once_and_moves_to_read(world: World) -> None:
    wamid_in = await world.customer_says(ANA, "Where is my parcel?")
    conv = await world.conversation_of(ANA_E164)
    r = await reply(
        world, conv, {"type": "text", "text": "On its way!", "reply_to": wamid_in}, key="k-1"
    )
    assert r.status_code == 202, r.text
    first = r.json()
    again = await reply(world, conv, {"type": "text", "text": "On its way!"}, key="k-1")
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    [sent] = await world.sent(1, kind="message")
    body = sent["body"]
    assert body["to"] == ANA_E164 and body["type"] == "text"
    assert body["text"] == {"body": "On its way!", "preview_url": False}
    assert body["context"] == {"message_id": wamid_in}
    assert body["biz_opaque_callback_data"]
    m = await world.until(conv, first["id"], "read")
    assert m["direction"] == "out" and m["wamid"] == sent["wamid"] and m["body"] == "On its way!"
    stats = await world.stats()
    assert stats["repeated_callback_data"] == 0
    assert len((await world.sim.get("/_sim/sent", params={"kind": "message"})).json()["data"]) == 1


async def test_each_kind_request_body(world: World) -> None:
    wamid_in = await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 64).decode()
    kinds: list[dict[str, Any]] = [
        {"type": "image", "media": {"data_b64": png, "mime_type": "image/png", "caption": "Look"}},
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": "Pick one",
                "buttons": [{"id": "y", "title": "Yes"}, {"id": "n", "title": "No"}],
            },
        },
        {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": "Menu",
                "button": "Open",
                "sections": [{"rows": [{"id": "a", "title": "A", "description": "first"}]}],
            },
        },
        {"type": "reaction", "reaction": {"message_id": wamid_in, "emoji": "👍"}},
    ]
    for i, spec in enumerate(kinds):
        r = await reply(world, conv, spec, key=f"kind-{i}")
        assert r.status_code == 202, r.text
    r = await world.owner.post("/api/v1/messages/read", json={"message_id": 1, "typing": True})
    sent = await world.sent(len(kinds), kind="message")
    by_type = {s["body"]["type"]: s["body"] for s in sent}
    image = by_type["image"]["image"]
    assert image["caption"] == "Look" and image["id"] and "link" not in image  # uploaded first
    inter = [s["body"]["interactive"] for s in sent if s["body"]["type"] == "interactive"]
    assert inter[0]["action"]["buttons"][1] == {
        "type": "reply",
        "reply": {"id": "n", "title": "No"},
    }
    assert inter[1]["action"]["sections"][0]["rows"][0]["description"] == "first"
    assert by_type["reaction"]["reaction"] == {"message_id": wamid_in, "emoji": "👍"}
    assert (await world.stats())["repeated_callback_data"] == 0


async def test_limits_checked_before_queueing(world: World) -> None:
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    bad: list[dict[str, Any]] = [
        {"type": "text", "text": "x" * 4097},
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": "b",
                "buttons": [{"id": str(i), "title": "t"} for i in range(4)],
            },
        },
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": "b",
                "buttons": [{"id": "1", "title": "x" * 21}],
            },
        },
        {"type": "image", "media": {"id": None}},
    ]
    for spec in bad:
        r = await reply(world, conv, spec)
        assert r.status_code == 422, (spec, r.text)
    assert (await world.sim.get("/_sim/sent")).json()["total"] == 0


async def test_window_closed_refuses_free_form_and_offers_templates(world: World) -> None:
    await world.customer_says(ANA, "hello")
    conv = await world.conversation_of(ANA_E164)
    r = await world.owner.post(f"/api/v1/channels/{world.channel['id']}/templates/sync")
    assert r.status_code == 200, r.text
    assert {t["name"] for t in r.json()} >= {"hello_world", "order_update", "winter_sale"}
    key = await api_key(world.owner, ["read", "write"])
    auth = bearer(key["key"])
    clock.advance(timedelta(hours=25))
    await world.sim.post("/_sim/clock", json={"advance_s": 0})
    r = await reply(world, conv, {"type": "text", "text": "late"}, auth=auth)
    assert r.status_code == 422
    assert "24-hour" in r.json()["detail"] and "hello_world" in r.json()["detail"]
    # a template goes; wrong parameters are refused before queueing
    r = await reply(
        world,
        conv,
        {"type": "template", "template": {"name": "order_update", "body": ["Ana"]}},
        auth=auth,
    )
    assert r.status_code == 422 and "expects 2" in r.json()["detail"]
    # marketing needs consent
    r = await reply(
        world,
        conv,
        {
            "type": "template",
            "template": {"name": "winter_sale", "body": {"first_name": "Ana", "discount": "10%"}},
        },
        auth=auth,
    )
    assert r.status_code == 422 and "marketing" in r.json()["detail"]
    r = await reply(
        world,
        conv,
        {
            "type": "template",
            "template": {
                "name": "order_update",
                "body": ["Ana", "A-1"],
                "buttons": [{"index": 0, "parameter": "A-1"}],
            },
        },
        auth=auth,
    )
    assert r.status_code == 202, r.text
