"""Reading what was received: conversations (filters, keyset pagination, the 24-hour window),
messages, contacts; per-workspace isolation; who may read."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectx.kit import clock
from tests.whatsapp.support import DISPLAY_B, PNID_B, WABA_B, connect, delivered, drain, load
from tests.workspaces.helpers import Caller, api_key, bearer, join, new_client, owner_of


def text_from(phone: str, wamid: str, ts: int, pnid: str | None = None) -> dict[str, Any]:
    payload = load("message_text")
    value = payload["entry"][0]["changes"][0]["value"]
    if pnid:
        value["metadata"]["phone_number_id"] = pnid
    message = value["messages"][0]
    message.update({"from": phone, "id": wamid, "timestamp": str(ts)})
    message.pop("from_user_id")
    value["contacts"] = [{"profile": {"name": f"Customer {phone[-4:]}"}, "wa_id": phone}]
    return payload


async def test_conversations_page_by_recent_activity_with_filters(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    second = await connect(owner, pnid=PNID_B, waba=WABA_B, display=DISPLAY_B, verify_token=None)
    base = int(clock.now().timestamp())
    for i in range(7):
        await delivered(client, text_from(f"4477009001{i:02d}", f"wamid.P{i}", base + i))
    await delivered(client, text_from("447700900100", "wamid.PB", base + 100, PNID_B))
    await drain()

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "channel": channel["id"]}
        if cursor:
            params["cursor"] = cursor
        r = await owner.get("/api/v1/conversations", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen.extend(c["id"] for c in page["items"])
        assert len(page["items"]) <= 3
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    times = []
    for cid in seen:
        times.append((await owner.get(f"/api/v1/conversations/{cid}")).json()["last_message_at"])
    assert times == sorted(times, reverse=True)

    other = (await owner.get("/api/v1/conversations", params={"channel": second["id"]})).json()
    assert len(other["items"]) == 1 and other["items"][0]["contact"]["name"] == "Customer 0100"
    assert (await owner.get("/api/v1/conversations", params={"status": "open"})).json()[
        "items"
    ].__len__() == 8
    assert (await owner.get("/api/v1/conversations", params={"status": "resolved"})).json()[
        "items"
    ] == []
    bad = await owner.get("/api/v1/conversations", params={"status": "archived"})
    assert bad.status_code == 422
    assert (
        await owner.get("/api/v1/conversations", params={"cursor": "garbage!"})
    ).status_code == 422
    assert (await owner.get("/api/v1/conversations", params={"limit": 0})).status_code == 422


async def test_one_open_conversation_per_contact_and_number_and_the_window(
    app: Any, client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    key = await api_key(owner, ["read"])
    now = int(clock.now().timestamp())
    await delivered(client, text_from("447700900555", "wamid.W1", now - 3600))
    await delivered(client, text_from("447700900555", "wamid.W2", now - 60))
    await drain()
    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    assert conversation["window_open"] is True
    # The window closes 24 h after the newest customer message (its own timestamp, whole
    # seconds), not 24 h after whenever this test happens to read it.
    expires = datetime.fromisoformat(conversation["window_expires_at"])
    assert expires == datetime.fromtimestamp(now - 60, UTC) + timedelta(hours=24)
    clock.advance(timedelta(hours=24))  # (sessions idle out; an API key reads on)
    async with new_client(app) as bare:
        r = await bare.get("/api/v1/conversations", headers=bearer(key["key"]))
    (later,) = r.json()["items"]
    assert later["id"] == conversation["id"] and later["window_open"] is False


async def test_messages_page_newest_first(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    base = int(clock.now().timestamp())
    for i in range(5):
        await delivered(client, text_from("447700900777", f"wamid.M{i}", base + i))
    await drain()
    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    first = (await owner.get(url, params={"limit": 2})).json()
    second = (await owner.get(url, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    third = (await owner.get(url, params={"limit": 2, "cursor": second["next_cursor"]})).json()
    wamids = [m["wamid"] for page in (first, second, third) for m in page["items"]]
    assert wamids == ["wamid.M4", "wamid.M3", "wamid.M2", "wamid.M1", "wamid.M0"]
    assert third["next_cursor"] is None


async def test_contacts_page_and_search(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    for i in range(4):
        await delivered(client, text_from(f"4477009002{i:02d}", f"wamid.C{i}", 1767225600 + i))
    await drain()
    first = (await owner.get("/api/v1/contacts", params={"limit": 3})).json()
    rest = (await owner.get("/api/v1/contacts", params={"cursor": first["next_cursor"]})).json()
    assert len(first["items"]) == 3 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    (found,) = (await owner.get("/api/v1/contacts", params={"phone": "+44 7700 900202"})).json()[
        "items"
    ]
    assert found["name"] == "Customer 0202"


async def test_other_workspaces_see_nothing_and_get_404s(
    app: Any, client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("message_text"))
    await drain()
    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    (person,) = (await owner.get("/api/v1/contacts")).json()["items"]
    stranger, _ = await owner_of(app, "Elsewhere Ltd")
    assert (await stranger.get("/api/v1/conversations")).json()["items"] == []
    assert (await stranger.get("/api/v1/contacts")).json()["items"] == []
    for url in (
        f"/api/v1/conversations/{conversation['id']}",
        f"/api/v1/conversations/{conversation['id']}/messages",
        f"/api/v1/contacts/{person['id']}",
    ):
        assert (await stranger.get(url)).status_code == 404, url


async def test_who_may_read(
    app: Any, client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, load("message_text"))
    await drain()
    agent = await join(app, owner, "agent", name="Agent Smith")
    analyst = await join(app, owner, "analyst", name="Ana Lyst")
    assert (await agent.get("/api/v1/conversations")).status_code == 200
    assert (await agent.get("/api/v1/contacts")).status_code == 200
    for url in ("/api/v1/conversations", "/api/v1/contacts"):
        r = await analyst.get(url)
        assert r.status_code == 403, url
    key = await api_key(owner, ["read"])
    async with new_client(app) as bare:
        r = await bare.get("/api/v1/conversations", headers=bearer(key["key"]))
        assert r.status_code == 200 and len(r.json()["items"]) == 1
        assert (await bare.get("/api/v1/conversations")).status_code == 401


async def test_reading_personal_data_is_audited(
    client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    from connectx.models.audit import AuditEvent
    from tests.whatsapp.support import rows

    await delivered(client, copy.deepcopy(load("message_text")))
    await drain()
    (conversation,) = (await owner.get("/api/v1/conversations")).json()["items"]
    await owner.get(f"/api/v1/conversations/{conversation['id']}/messages")
    await owner.get("/api/v1/contacts")
    actions = [e.action for e in await rows(AuditEvent, order_by=AuditEvent.id)]
    assert "whatsapp.inbound_stored" in actions
    for action in ("conversations.viewed", "messages.viewed", "contacts.viewed"):
        assert action in actions
    stored = next(e for e in await rows(AuditEvent) if e.action == "whatsapp.inbound_stored")
    assert stored.data["messages"] == 1 and stored.actor == "system"
    assert "Sheena" not in repr(stored.data) and "16505551234" not in repr(stored.data)


async def test_status_lifecycle_pending_reopens_resolved_starts_anew(
    app: Any, client: httpx.AsyncClient, owner: Caller, channel: dict[str, Any]
) -> None:
    base = int(clock.now().timestamp())
    await delivered(client, text_from("447700900888", "wamid.S1", base))
    await drain()
    (first,) = (await owner.get("/api/v1/conversations")).json()["items"]
    url = f"/api/v1/conversations/{first['id']}"

    r = await owner.patch(url, json={"status": "pending"})
    assert r.status_code == 200 and r.json()["status"] == "pending"
    await delivered(client, text_from("447700900888", "wamid.S2", base + 1))
    await drain()
    assert (await owner.get(url)).json()["status"] == "open"  # the customer wrote again

    r = await owner.patch(url, json={"status": "resolved"})
    assert r.status_code == 200 and r.json()["resolved_at"] is not None
    await delivered(client, text_from("447700900888", "wamid.S3", base + 2))
    await drain()
    items = (await owner.get("/api/v1/conversations")).json()["items"]
    assert [c["status"] for c in items] == ["open", "resolved"]
    assert items[1]["id"] == first["id"]

    r = await owner.patch(url, json={"status": "open"})  # two unresolved: refused
    assert r.status_code == 409 and r.json()["conversation"] == items[0]["id"]
    assert (await owner.patch(url, json={"status": "archived"})).status_code == 422
    assert (await owner.client.patch(url, json={"status": "open"})).status_code == 403  # CSRF
    analyst = await join(app, owner, "analyst", name="Ana Lyst")
    assert (await analyst.patch(url, json={"status": "open"})).status_code == 403
