"""The audit log for admins (filters, pages, CSV/JSON export, the export itself recorded) and
"view" entries for every read of personal data: one per request, with who, whose, what and the
truncated network it came from."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from tests.test_tenant_isolation import walked_routes
from tests.whatsapp.support import PNID_A, connect, delivered, drain, for_number, load
from tests.workspaces.helpers import api_key, bearer, join, owner_of
from tests.workspaces.test_pages import page

# Routes that read personal data of contacts and conversations (GET under /api/v1). A new one
# must be listed here with sample ids, or the walk below fails (so its audit is not forgotten).
PERSONAL_READS = ("contacts", "conversations", "messages", "media", "events")


async def _events(**where: Any) -> list[AuditEvent]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        for k, v in where.items():
            stmt = stmt.where(getattr(AuditEvent, k) == v)
        return list((await db.execute(stmt)).scalars())


async def _a_conversation(owner: Any, client: Any) -> tuple[int, int, int]:
    await connect(owner)
    await delivered(client, for_number(load("message_text"), PNID_A))
    await drain()
    conv = (await owner.get("/api/v1/conversations")).json()["items"][0]
    msgs = (await owner.get(f"/api/v1/conversations/{conv['id']}/messages")).json()["items"]
    return int(conv["id"]), int(conv["contact"]["id"]), int(msgs[0]["id"])


async def test_every_read_of_personal_data_is_one_view_entry(app: Any, client: Any) -> None:
    owner, ws = await owner_of(app)
    conv, contact, message = await _a_conversation(owner, client)
    key = await api_key(owner, ["read"])
    ids = {"contact_id": contact, "conversation_id": conv, "message_id": message}
    walked = 0
    for route in walked_routes(app):
        if "GET" not in (route.methods or ()):
            continue
        parts = route.path.split("/")
        if route.path.startswith("/api/v1/workspace") or not (set(parts) & set(PERSONAL_READS)):
            continue
        if "events" in parts:
            continue  # a stream of ids (SSE), no personal data
        names = re.findall(r"{(\w+)}", route.path)
        assert set(names) <= set(ids), f"{route.path}: add sample ids for {names}"
        url = route.path.format(**ids)
        for who, headers in (
            (f"user:{owner.user.id}", {}),
            (f"api_key:{key['id']}", bearer(key["key"])),
        ):
            before = len(await _events(workspace_id=ws))
            r = await owner.client.get(url, headers=headers)
            if r.status_code == 404 and "media" in parts:
                continue  # a text message has no media
            assert r.status_code == 200, (url, r.text)
            new = (await _events(workspace_id=ws))[before:]
            assert len(new) == 1, (url, [e.action for e in new])  # one entry per request
            [entry] = new
            assert entry.actor == who and entry.action.endswith("viewed"), (url, entry.action)
            assert entry.ip_truncated is not None, url  # from where (network, not the host)
            walked += 1
    assert walked >= 10


async def test_admins_browse_filter_and_export_the_log(app: Any, client: Any) -> None:
    owner, ws = await owner_of(app)
    conv, contact, _ = await _a_conversation(owner, client)
    agent = await join(app, owner, "agent")
    await agent.get(f"/api/v1/contacts/{contact}")
    await agent.get(f"/api/v1/conversations/{conv}")

    r = await owner.get("/api/v1/workspace/audit", params={"actor": f"user:{agent.user.id}"})
    assert r.status_code == 200, r.text
    actions = [e["action"] for e in r.json()["items"]]
    assert actions[:2] == ["conversation.viewed", "contact.viewed"]  # newest first
    assert all(e["ip"] for e in r.json()["items"][:2])
    r = await owner.get(
        "/api/v1/workspace/audit", params={"subject": f"contact:{contact}", "action": "contact.*"}
    )
    assert {e["action"] for e in r.json()["items"]} >= {"contact.viewed"}
    assert all(e["subject"] == f"contact:{contact}" for e in r.json()["items"])

    # pages
    first = (await owner.get("/api/v1/workspace/audit", params={"limit": 2})).json()
    second = (
        await owner.get(
            "/api/v1/workspace/audit", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert first["next_cursor"] and second["items"][0]["id"] < first["items"][-1]["id"]

    # agents cannot read it; bad filters are a 422 naming the field
    assert (await agent.get("/api/v1/workspace/audit")).status_code == 403
    for params, field in (
        ({"actor": "ada@example.com"}, "actor"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-12-05", "until": "2026-12-01"}, "since"),
        ({"action": "drop table;"}, "action"),
        ({"cursor": "x"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ):
        r = await owner.get("/api/v1/workspace/audit", params=params)
        assert r.status_code == 422 and field in r.text, (params, r.text)

    # export: CSV and JSON, the export recorded with its filters
    r = await owner.get(
        "/api/v1/workspace/audit/export",
        params={"format": "csv", "actor": f"user:{agent.user.id}"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["action"] for row in rows} >= {"contact.viewed", "conversation.viewed"}
    assert all(row["actor"] == f"user:{agent.user.id}" for row in rows)
    r = await owner.get("/api/v1/workspace/audit/export", params={"format": "json"})
    assert r.status_code == 200 and isinstance(r.json(), list) and r.json()[0]["hash"]
    assert (
        await owner.get("/api/v1/workspace/audit/export", params={"format": "xml"})
    ).status_code == 422
    exported = await _events(action="audit.exported")
    assert [e.data["format"] for e in exported] == ["csv", "json"]
    assert exported[0].data["filters"] == {"actor": f"user:{agent.user.id}"}
    assert exported[0].actor == f"user:{owner.user.id}" and exported[0].workspace_id == ws


async def test_the_audit_log_page(app: Any, client: Any) -> None:
    owner, _ = await owner_of(app)
    _, contact, _ = await _a_conversation(owner, client)
    html = await page(owner, "/workspace/audit")
    assert 'href="/workspace/audit" aria-current="page"' in html
    assert "conversations.viewed" in html and f"user:{owner.user.id}" in html
    html = await page(owner, "/workspace/audit?action=conversations.viewed")
    assert "conversations.viewed" in html and "messages.viewed" not in html
    assert "/api/v1/workspace/audit/export?action=conversations.viewed&amp;format=csv" in html
    html = await page(owner, f"/workspace/audit?subject=contact:{contact}&action=nothing.here")
    assert 'id="audit-empty"' in html
    html = await page(owner, "/workspace/audit?since=someday", status=422)
    assert "since is a date" in html
    agent = await join(app, owner, "agent")
    r = await agent.client.get("/workspace/audit", headers={"Accept": "text/html"})
    assert r.status_code == 403
