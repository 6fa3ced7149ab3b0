"""Real-time events over server-sent events (docs/realtime.md): what members see live, resuming
after a reconnect, tenant separation, and the same across two app instances sharing Redis."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realtime.sse import Stream, cookie_headers
from tests.whatsapp.support import PNID_B, WABA_B, connect, delivered, drain, for_number, load
from tests.workspaces.helpers import Caller, api_key, bearer, join, new_client, owner_of


async def stream_of(app: Any, who: Caller, since: str | None = None) -> Stream:
    headers = cookie_headers(who.client)
    if since is not None:
        headers["last-event-id"] = since
    return Stream(app, "/api/v1/events", headers)


async def inbound(owner: Caller, **number: str) -> int:
    """A customer writes to ``owner``'s number; the conversation id."""
    await connect(owner, **number)
    payload = load("message_text")
    if number:
        payload = for_number(payload, number["pnid"], number.get("waba"))
    await delivered(owner.client, payload)
    await drain()
    items = (await owner.get("/api/v1/conversations")).json()["items"]
    return int(items[0]["id"])


async def test_a_member_sees_a_customer_message_arrive(bus_kind: str, app: Any) -> None:
    owner, _ = await owner_of(app)
    await connect(owner)
    async with await stream_of(app, owner) as events:
        assert events.status == 200
        assert events.response_headers["content-type"].startswith("text/event-stream")
        ready = await events.next()
        assert ready.event == "ready" and ready.id
        await delivered(owner.client, load("message_text"))
        await drain()
        new = await events.until("message.new")
    conversation = (await owner.get("/api/v1/conversations")).json()["items"][0]
    messages = (await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")).json()
    assert new.data == {
        "type": "message.new",
        "message_id": messages["items"][0]["id"],
        "conversation_id": conversation["id"],
        "direction": "in",
    }
    assert new.id is not None and new.id > ready.id  # type: ignore[operator]


async def test_a_reconnect_resumes_without_losing_or_repeating(bus_kind: str, app: Any) -> None:
    owner, _ = await owner_of(app)
    conversation = await inbound(owner)
    async with await stream_of(app, owner) as events:
        last = (await events.next()).id
    assert last is not None
    for status in ("pending", "resolved", "open"):  # while the browser is away
        r = await owner.patch(f"/api/v1/conversations/{conversation}", json={"status": status})
        assert r.status_code == 200, r.text
    async with await stream_of(app, owner, since=last) as events:
        missed = [await events.next() for _ in range(3)]
        assert [(f.event, f.data["status"]) for f in missed] == [
            ("conversation.status", "pending"),
            ("conversation.status", "resolved"),
            ("conversation.status", "open"),
        ]
        assert all(f.data["conversation_id"] == conversation for f in missed)
        r = await owner.patch(f"/api/v1/conversations/{conversation}", json={"status": "pending"})
        live = await events.next()
        assert live.data["status"] == "pending" and live.id > missed[-1].id  # type: ignore[operator]
        await events.nothing_for(0.2)
    # An id the log cannot vouch for (too old, another process's, garbage): reload, then go on.
    stale_ids = ["99999999999999-0", "not-an-id"]  # from the future (a lost stream), garbage
    if bus_kind == "local":
        stale_ids.append("1-0")  # before this process started
    for stale in stale_ids:
        async with await stream_of(app, owner, since=stale) as events:
            assert (await events.next()).event == "reset"


async def test_a_client_behind_the_window_is_told_to_reload(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectx.realtime import bus

    bus.LOCAL.reset()
    monkeypatch.setattr(bus.LOCAL, "window", 2)
    owner, _ = await owner_of(app)
    conversation = await inbound(owner)
    async with await stream_of(app, owner) as events:
        last = (await events.next()).id
    for status in ("pending", "open", "pending"):
        await owner.patch(f"/api/v1/conversations/{conversation}", json={"status": status})
    async with await stream_of(app, owner, since=last) as events:
        reset = await events.next()
        assert reset.event == "reset"
        await owner.patch(f"/api/v1/conversations/{conversation}", json={"status": "open"})
        assert (await events.next()).data["status"] == "open"


async def test_workspaces_never_see_each_others_events(bus_kind: str, app: Any) -> None:
    owner_a, _ = await owner_of(app)
    owner_b, _ = await owner_of(app, business="Other Co")
    conversation_a = await inbound(owner_a)
    conversation_b = await inbound(owner_b, pnid=PNID_B, waba=WABA_B)
    async with (
        await stream_of(app, owner_b) as b_events,
        await stream_of(app, owner_a) as a_events,
    ):
        since_b = (await b_events.next()).id
        await a_events.next()
        r = await owner_a.patch(
            f"/api/v1/conversations/{conversation_a}", json={"status": "pending"}
        )
        assert r.status_code == 200
        assert (await a_events.next()).data["conversation_id"] == conversation_a
        r = await owner_b.patch(
            f"/api/v1/conversations/{conversation_b}", json={"status": "pending"}
        )
        seen = await b_events.next()
        assert seen.data["conversation_id"] == conversation_b
        await b_events.nothing_for(0.1)
    async with await stream_of(app, owner_b, since=since_b) as replayed:  # resuming neither
        assert (await replayed.next()).data["conversation_id"] == conversation_b
        await replayed.nothing_for(0.1)


async def test_who_may_listen(app: Any) -> None:
    owner, _ = await owner_of(app)
    analyst = await join(app, owner, "analyst")
    async with await stream_of(app, analyst) as events:
        assert events.status == 403
    async with Stream(app, "/api/v1/events") as anonymous:
        assert anonymous.status == 401
    key = (await api_key(owner, ["read"]))["key"]
    async with Stream(app, "/api/v1/events", bearer(key)) as events:
        assert events.status == 200
        assert (await events.next()).event == "ready"


async def test_keepalives_while_quiet(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectx.realtime import stream

    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.05)
    owner, _ = await owner_of(app)
    async with await stream_of(app, owner) as events:
        await events.next()
        # Keep-alive comments and no event frame; waited for, not counted in a fixed window (a
        # loaded CI machine once delivered one comment in 0.2 s)
        for _ in range(100):
            await events.nothing_for(0.05)
            if events.comments >= 2:
                break
        assert events.comments >= 2


async def test_two_app_instances_share_events_through_redis(
    environment: dict[str, str], bus_kind: str
) -> None:
    if bus_kind != "redis":
        pytest.skip("several processes need Redis")
    from connectx.app import create_app

    first, second = create_app(), create_app()
    async with (
        first.router.lifespan_context(first),
        second.router.lifespan_context(second),
    ):
        owner, _ = await owner_of(first)
        conversation = await inbound(owner)
        on_second = new_client(second)
        on_second.cookies.update(owner.client.cookies)
        async with Stream(second, "/api/v1/events", cookie_headers(owner.client)) as events:
            ready = await events.next()
            r = await owner.patch(
                f"/api/v1/conversations/{conversation}", json={"status": "pending"}
            )
            assert r.status_code == 200
            seen = await events.next()
            assert seen.event == "conversation.status"
            assert seen.data["conversation_id"] == conversation
        async with Stream(
            second,
            "/api/v1/events",
            {**cookie_headers(owner.client), "last-event-id": ready.id or ""},
        ) as again:
            assert (await again.next()).id == seen.id
        await on_second.aclose()


async def test_an_agents_reply_is_announced_when_queued(app: Any) -> None:
    """The outbound send publishes ``message.new`` (direction out) after its commit."""
    import time

    from tests.inbox.support import customer_message

    owner, _ = await owner_of(app)
    await connect(owner)
    payload = customer_message("Sheena Nelson", "16505551234")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(time.time()))
    await delivered(owner.client, payload)
    await drain()
    conversation = (await owner.get("/api/v1/conversations")).json()["items"][0]["id"]
    async with await stream_of(app, owner) as events:
        await events.next()
        r = await owner.post(
            f"/api/v1/conversations/{conversation}/messages", json={"type": "text", "text": "Hi!"}
        )
        assert r.status_code == 202, r.text
        sent = await events.until("message.new")
    assert sent.data["direction"] == "out" and sent.data["conversation_id"] == conversation
    assert sent.data["message_id"] == r.json()["id"]
