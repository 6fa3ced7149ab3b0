"""Legal holds for a workspace's owners and admins: the JSON API and the retention page. Holds on
the workspace or one of its contacts, audited, respected by the run; agents may not; the
operator's holds stay the operator's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connectx.kit import clock
from tests.retention.support import contact_row, customer_writes, events, run_cli
from tests.support.factories import signed_in
from tests.web.html import parse
from tests.whatsapp.support import connect
from tests.workspaces.helpers import Caller, api_key, bearer, join, owner_of

HOLDS = "/api/v1/workspace/legal-holds"


async def test_owners_hold_a_contact_and_the_workspace_and_retention_keeps_them(
    app: Any,
) -> None:
    owner, ws = await owner_of(app, "Holding Co")
    await connect(owner)
    kept = await customer_writes(owner, "16505550401", "Hana Held")
    free = await customer_writes(owner, "16505550402", "Fred Free")

    r = await owner.post(
        HOLDS, json={"contact_id": kept.id, "reason": "claim 41 by hana@example.com"}
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["scope"] == "contact" and hold["contact_id"] == kept.id and hold["active"]
    assert hold["reason"] == "claim 41 by [email]"  # identifying details are masked
    assert hold["placed_by"] == f"user:{owner.user.id}"
    [placed] = await events("legal_hold.placed")
    assert (placed.workspace_id, placed.subject, placed.data) == (
        ws,
        f"contact:{kept.id}",
        {"hold_id": hold["id"]},
    )
    assert placed.actor == f"user:{owner.user.id}" and placed.reason == "claim 41 by [email]"

    # An operator's hold on the workspace is not the workspace's to see or release.
    operator = await run_cli("retention", "hold", "place", "--workspace", str(ws), "--reason", "x")
    operator_hold = int(operator.output.split()[2])
    listed = (await owner.get(HOLDS)).json()
    assert [h["id"] for h in listed] == [hold["id"]]
    r = await owner.post(f"{HOLDS}/{operator_hold}/release")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await run_cli("retention", "hold", "release", str(operator_hold))).exit_code == 0

    clock.advance(timedelta(days=3 * 365 + 2))
    assert (await run_cli("retention", "run", "--no-progress")).exit_code == 0
    assert (await contact_row(kept.id)).phone_enc is not None  # held
    assert (await contact_row(free.id)).phone_enc is None

    owner.csrf = await signed_in(owner.client, owner.email)  # years went by
    r = await owner.post(f"{HOLDS}/{hold['id']}/release")
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["released_by"] == f"user:{owner.user.id}"
    again = await owner.post(f"{HOLDS}/{hold['id']}/release")
    assert again.status_code == 409 and "already released" in again.text
    released = (await events("legal_hold.released"))[-1]
    assert released.subject == f"contact:{kept.id}" and released.workspace_id == ws
    assert released.data == {"hold_id": hold["id"]}
    assert (await owner.get(HOLDS)).json() == []
    assert [h["id"] for h in (await owner.get(f"{HOLDS}?all=true")).json()] == [hold["id"]]
    assert (await run_cli("retention", "run", "--no-progress")).exit_code == 0
    assert (await contact_row(kept.id)).phone_enc is None

    # A hold on the whole workspace, by an admin API key.
    key = await api_key(owner, ["admin"])
    r = await owner.client.post(
        HOLDS, json={"reason": "regulator inquiry 7"}, headers=bearer(key["key"])
    )
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == "workspace" and r.json()["contact_id"] is None
    assert r.json()["placed_by"] == f"api_key:{key['id']}"


async def test_bad_input_and_the_wrong_people_are_refused(app: Any) -> None:
    owner, _ = await owner_of(app, "Careful Co")
    other, _ = await owner_of(app, "Other Co")
    await connect(other)
    theirs = await customer_writes(other, "16505550403", "Tariq Theirs")
    agent: Caller = await join(app, owner, "agent")

    for body, status, words in (
        ({"reason": ""}, 422, "reason"),
        ({"contact_id": 1}, 422, "reason"),
        ({"reason": "x", "workspace_id": 3}, 422, "workspace_id"),
        ({"contact_id": "abc", "reason": "x"}, 422, "contact_id"),
        ({"contact_id": theirs.id, "reason": "x"}, 404, f"No contact {theirs.id}"),
        ({"reason": "   "}, 422, "Give the reason for the hold"),
    ):
        r = await owner.post(HOLDS, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert words in r.text, (body, r.text)
    assert (await agent.post(HOLDS, json={"reason": "x"})).status_code == 403
    assert (await agent.get(HOLDS)).status_code == 403
    assert (await owner.post(f"{HOLDS}/999999/release")).status_code == 404
    assert await events("legal_hold.placed") == []


async def test_the_retention_page_places_lists_and_releases_holds(app: Any) -> None:
    owner, ws = await owner_of(app, "Page Holds Co")
    await connect(owner)
    contact = await customer_writes(owner, "16505550404", "Paula Page")
    agent = await join(app, owner, "agent")
    assert "Legal holds" not in (await agent.get("/workspace/retention")).text

    page = parse((await owner.get("/workspace/retention")).text)
    assert "No active legal holds." in page.text
    r = await owner.client.post(
        "/workspace/retention/holds",
        data={"contact_id": str(contact.id), "reason": "case 12", "csrf_token": owner.csrf},
    )
    assert r.status_code == 303, r.text
    r = await owner.client.post(
        "/workspace/retention/holds",
        data={"contact_id": "", "reason": "audit 2026", "csrf_token": owner.csrf},
    )
    assert r.status_code == 303
    page = parse((await owner.get("/workspace/retention")).text)
    assert f"Contact {contact.id}" in page.text and "This workspace" in page.text
    assert "Legal hold" in page.text and "case 12" in page.text

    bad = await owner.client.post(
        "/workspace/retention/holds",
        data={"contact_id": "twelve", "reason": "x", "csrf_token": owner.csrf},
    )
    assert bad.status_code == 422 and "Enter the contact's number" in parse(bad.text).text
    missing = await owner.client.post(
        "/workspace/retention/holds", data={"reason": "", "csrf_token": owner.csrf}
    )
    assert missing.status_code == 422 and "Give the reason for the hold" in missing.text

    [first, second] = (await owner.get(HOLDS)).json()
    r = await owner.client.post(
        f"/workspace/retention/holds/{first['id']}/release", data={"csrf_token": owner.csrf}
    )
    assert r.status_code == 303
    assert [h["id"] for h in (await owner.get(HOLDS)).json()] == [second["id"]]
    assert len(await events("legal_hold.released")) == 1
    assert {e.workspace_id for e in await events("legal_hold.placed")} == {ws}
