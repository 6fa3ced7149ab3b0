"""Assignment to self, a member, a team; round-robin; snooze; through the HTTP API."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.audit import AuditEvent
from connectx.models.conversation import Conversation
from tests.inbox.support import customers_write, workspace_with_number
from tests.realtime.sse import Stream, cookie_headers
from tests.workspaces.helpers import api_key, bearer, join, owner_of


async def audit_actions(action: str) -> list[dict[str, Any]]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        rows = await db.execute(stmt)
        return [dict(e.data) for e in rows.scalars()]


async def test_assign_to_me_to_an_agent_to_a_team_and_to_nobody(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    analyst = await join(app, owner, "analyst", name="Ana Lyst")
    await workspace_with_number(owner)
    (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
    url = f"/api/v1/conversations/{cid}/assignment"

    r = await owner.client.put(url, json={"me": True}, headers=owner.h)
    assert r.status_code == 200, r.text
    assert r.json()["assignee_user_id"] == owner.user.id and r.json()["assigned_at"]

    team = (await owner.post("/api/v1/teams", json={"name": "Support"})).json()
    r = await owner.client.put(
        f"/api/v1/teams/{team['id']}/members/{agent.user.id}", headers=owner.h
    )
    assert r.json()["members"] == [agent.user.id]
    r = await agent.client.put(
        url, json={"user_id": agent.user.id, "team_id": team["id"]}, headers=agent.h
    )
    assert r.status_code == 200, r.text
    assert (r.json()["assignee_user_id"], r.json()["team_id"]) == (agent.user.id, team["id"])

    r = await owner.client.put(url, json={"user_id": analyst.user.id}, headers=owner.h)
    assert r.status_code == 422 and "analyst" in r.json()["detail"]
    r = await owner.client.put(url, json={"user_id": 2_000_000_001}, headers=owner.h)
    assert r.status_code == 404
    r = await analyst.client.put(url, json={"me": True}, headers=analyst.h)
    assert r.status_code == 403

    r = await owner.client.put(url, json={"user_id": None, "team_id": None}, headers=owner.h)
    assert r.json()["assignee_user_id"] is None and r.json()["team_id"] is None
    moves = [(d["from_user"], d["to_user"]) for d in await audit_actions("conversation.assigned")]
    assert moves == [(None, owner.user.id), (owner.user.id, agent.user.id), (agent.user.id, None)]

    # An agent assigning to themselves is not notified; assigning to someone else notifies.
    assert (await agent.get("/api/v1/notifications")).json()["items"] == []
    await owner.client.put(url, json={"user_id": agent.user.id}, headers=owner.h)
    bell = (await agent.get("/api/v1/notifications")).json()
    assert bell["unread"] == 1
    assert bell["items"][0]["kind"] == "assigned" and bell["items"][0]["conversation_id"] == cid


async def test_the_assignee_sees_it_live_and_only_they_get_the_bell(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    await workspace_with_number(owner)
    (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
    async with (
        Stream(app, "/api/v1/events", cookie_headers(agent.client)) as agents,
        Stream(app, "/api/v1/events", cookie_headers(owner.client)) as owners,
    ):
        await agents.next()
        await owners.next()
        r = await owner.client.put(
            f"/api/v1/conversations/{cid}/assignment",
            json={"user_id": agent.user.id},
            headers=owner.h,
        )
        assert r.status_code == 200
        seen = await agents.next()
        assert seen.event == "conversation.assigned"
        assert seen.data == {
            "type": "conversation.assigned",
            "conversation_id": cid,
            "assignee_user_id": agent.user.id,
            "team_id": None,
        }
        bell = await agents.next()
        assert bell.event == "notification.new" and bell.data["conversation_id"] == cid
        assert (await owners.next()).event == "conversation.assigned"
        await owners.nothing_for(0.1)


async def test_round_robin_takes_turns_and_skips_analysts(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    await join(app, owner, "analyst", name="Ana Lyst")
    channel = await workspace_with_number(owner)
    r = await owner.client.put(
        f"/api/v1/channels/{channel}/routing", json={"mode": "round_robin"}, headers=owner.h
    )
    assert r.status_code == 200, r.text
    async with Stream(app, "/api/v1/events", cookie_headers(owner.client)) as owners:
        await owners.next()
        ids = await customers_write(
            owner,
            ("Ann One", "16505550001"),
            ("Ben Two", "16505550002"),
            ("Cy Three", "16505550003"),
        )
        # Assigned in the transaction that opened them: committed once processing is.
        got = [(await owner.get(f"/api/v1/inbox/conversations/{i}")).json() for i in ids]
        live = {(await owners.until("conversation.assigned")).data["conversation_id"] for _ in ids}
    assert live == set(ids)  # ... and the browsers are told
    turns = [c["assignee_user_id"] for c in got]
    first, second = sorted([owner.user.id, agent.user.id])
    # The rotation is first, second, first (user-id order, the analyst skipped). Which customer
    # gets which turn is the order their conversations were opened in, which concurrent
    # processors (PostgreSQL) do not fix: the turns are compared as a multiset.
    assert sorted(turns) == sorted([first, second, first])
    assigned = await audit_actions("conversation.assigned")
    moves = sorted((d["conversation"], d["to_user"]) for d in assigned)
    assert moves == sorted(zip(ids, turns, strict=True))
    assert {d.get("rule") for d in assigned} == {"round_robin"}
    routing = (await owner.get("/api/v1/routing")).json()
    assert routing == [
        {"channel_id": channel, "mode": "round_robin", "team_id": None, "last_user_id": first}
    ]
    # Agents cannot change the rules; an unknown mode is refused with the choices.
    r = await agent.client.put(
        f"/api/v1/channels/{channel}/routing", json={"mode": "manual"}, headers=agent.h
    )
    assert r.status_code == 403
    r = await owner.client.put(
        f"/api/v1/channels/{channel}/routing", json={"mode": "lottery"}, headers=owner.h
    )
    assert r.status_code == 422


async def test_round_robin_is_fair_and_assigns_once_under_concurrency(app: Any) -> None:
    from connectx.inbox import assignment

    owner, ws = await owner_of(app)
    await join(app, owner, "agent")
    await join(app, owner, "agent", name="Third Agent")
    channel = await workspace_with_number(owner)
    ids = await customers_write(owner, *((f"Person {i}", f"1650555{i:04d}") for i in range(12)))
    await owner.client.put(
        f"/api/v1/channels/{channel}/routing", json={"mode": "round_robin"}, headers=owner.h
    )

    async def one(batch: list[int]) -> int:
        async with unit_of_work() as db:
            return await assignment.auto_assign(db, ws, batch)

    # Twelve conversations offered by six concurrent transactions, each twice.
    batches = [ids[i : i + 4] for i in range(0, 12, 4)] * 2
    done = await asyncio.gather(*(one(b) for b in batches))
    assert sum(done) == 12
    async with unit_of_work() as db:
        rows = (await db.execute(select(Conversation.assignee_user_id))).scalars().all()
    per_person = sorted(list(rows).count(u) for u in set(rows))
    assert per_person == [4, 4, 4]
    assert len(await audit_actions("conversation.assigned")) == 12


async def test_snooze_until_a_time_then_wake(app: Any) -> None:
    from connectx.inbox import assignment

    owner, _ = await owner_of(app)
    await workspace_with_number(owner)
    (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
    url = f"/api/v1/conversations/{cid}/snooze"
    for bad, why in (
        ("2020-01-01T00:00:00Z", "future"),
        ((clock.now() + timedelta(days=400)).isoformat(), "a year"),
        ("2030-01-01T00:00:00", "time zone"),
        ("tomorrow", ""),
    ):
        r = await owner.post(url, json={"until": bad})
        assert r.status_code == 422 and why in r.text, r.text
    until = clock.now() + timedelta(hours=2)
    r = await owner.post(url, json={"until": until.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["snoozed_until"]

    async with Stream(app, "/api/v1/events", cookie_headers(owner.client)) as events:
        await events.next()
        async with unit_of_work() as db:
            assert await assignment.wake_due(db) == 0  # not yet
        clock.advance(timedelta(hours=2, seconds=1))
        async with unit_of_work() as db:
            assert await assignment.wake_due(db) == 1
        woke = await events.next()
        assert (woke.event, woke.data["status"]) == ("conversation.status", "open")
    now = (await owner.get(f"/api/v1/inbox/conversations/{cid}")).json()
    assert now["status"] == "open" and now["snoozed_until"] is None

    # Resolving a snoozed conversation cancels the wake-up.
    await owner.post(url, json={"until": (clock.now() + timedelta(hours=1)).isoformat()})
    await owner.patch(f"/api/v1/conversations/{cid}", json={"status": "resolved"})
    r = await owner.post(url, json={"until": (clock.now() + timedelta(hours=1)).isoformat()})
    assert r.status_code == 409
    clock.advance(timedelta(hours=2))
    async with unit_of_work() as db:
        assert await assignment.wake_due(db) == 0
    assert (await owner.get(f"/api/v1/inbox/conversations/{cid}")).json()["status"] == "resolved"


async def test_api_keys_assign_by_user_id_not_to_themselves(app: Any) -> None:
    owner, _ = await owner_of(app)
    await workspace_with_number(owner)
    (cid,) = await customers_write(owner, ("Sheena Nelson", "16505551234"))
    writer = bearer((await api_key(owner, ["write"]))["key"])
    reader = bearer((await api_key(owner, ["read"]))["key"])
    url = f"/api/v1/conversations/{cid}/assignment"
    r = await owner.client.put(url, json={"me": True}, headers=writer)
    assert r.status_code == 422 and "API key" in r.json()["detail"]
    r = await owner.client.put(url, json={"user_id": owner.user.id}, headers=reader)
    assert r.status_code == 403
    r = await owner.client.put(url, json={"user_id": owner.user.id}, headers=writer)
    assert r.status_code == 200 and r.json()["assignee_user_id"] == owner.user.id
