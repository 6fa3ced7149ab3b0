"""The inbox's triage controls over HTTP (the htmx fragments a browser swaps): assignment to me,
to a colleague and a team, the colleague's bell and e-mail preference, labels (and the list's
label filter), snooze, internal notes in the thread, canned responses for ``/shortcut``, the
contact panel's editable attributes, consent and data requests, and the restriction banner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from tests.inbox_ui.test_thread import now_stamped
from tests.web.html import Element, parse
from tests.whatsapp.support import delivered, drain, inbound_for, load
from tests.workspaces.helpers import Caller, join, owner_of

HTMX = {"hx-request": "true", "accept": "text/html"}


async def _head(who: Caller, cid: int) -> Element:
    r = await who.get(f"/inbox/c/{cid}/head", headers=HTMX)
    assert r.status_code == 200, r.text
    return parse(r.text).find("header")


async def _post(who: Caller, url: str, data: dict[str, Any] | None = None) -> Any:
    r = await who.post(url, data=data or {}, headers=HTMX)
    assert r.status_code == 200, (url, r.status_code, r.text)
    return r


async def _actions(workspace_id: int) -> list[str]:
    async with unit_of_work() as db:
        stmt = select(AuditEvent.action).where(AuditEvent.workspace_id == workspace_id)
        return list((await db.execute(stmt.order_by(AuditEvent.id))).scalars())


async def test_assign_to_me_to_a_colleague_and_a_team_and_the_colleague_is_told(app: Any) -> None:
    owner, ws = await owner_of(app)
    agent = await join(app, owner, "agent", name="Grace Hopper")
    cid = (await inbound_for(owner))["conversation_id"]
    head = await _head(owner, cid)
    assert head.find("p", id="thread-assignee").text == "Unassigned"
    assert head.find("button", **{"data-shortcut": "a"}).text == "Assign to me"
    options = {o.text for o in head.find("details", id="assign-menu").find_all("option")}
    assert {"Nobody", "Grace Hopper"} <= options

    head = parse((await _post(owner, f"/inbox/c/{cid}/assign", {"to": "me"})).text)
    assert head.find("p", id="thread-assignee").text == "Assigned to you"
    assert not head.find_all("button", **{"data-shortcut": "a"})  # it is mine already

    team = await owner.post("/api/v1/teams", json={"name": "Support"})
    assert team.status_code == 201, team.text
    data = {"to": "pick", "user_id": str(agent.user.id), "team_id": str(team.json()["id"])}
    head = parse((await _post(owner, f"/inbox/c/{cid}/assign", data)).text)
    assert head.find("p", id="thread-assignee").text == "Assigned to Grace Hopper · team Support"
    assert "conversation.assigned" in await _actions(ws)

    # The colleague: the conversation is in "Mine", marked so, and the bell says why.
    rows = parse((await agent.get("/inbox/list?view=mine&status=all", headers=HTMX)).text)
    [row] = rows.find_all("li", **{"data-conversation": str(cid)})
    assert "Mine" in row.find("span", **{"class": "tag tag-assignee"}).text
    bell = parse((await agent.get("/inbox/bell", headers=HTMX)).text).find("details", id="bell")
    assert bell.find("summary").attrs["aria-label"] == "Notifications, 1 unread"
    link = bell.find("ul", **{"class": "bell-items"}).find("a")
    assert link.attrs["href"] == f"/inbox/c/{cid}"
    assert "by " in bell.find("ul").text
    # The e-mail preference is the colleague's own, from the bell.
    bell = parse((await _post(agent, "/inbox/preferences", {"email_on_assignment": "1"})).text)
    assert "checked" in bell.find("input", name="email_on_assignment").attrs
    assert (await agent.get("/api/v1/inbox/preferences")).json()["email_on_assignment"] is True
    bell = parse((await _post(agent, "/inbox/notifications/read")).text)
    assert bell.find("summary").attrs["aria-label"] == "Notifications, 0 unread"

    head = parse((await _post(owner, f"/inbox/c/{cid}/assign", {"to": "nobody"})).text)
    assert head.find("p", id="thread-assignee").text == "Unassigned"
    r = await owner.post(
        f"/inbox/c/{cid}/assign", data={"to": "pick", "user_id": "x"}, headers=HTMX
    )
    assert r.status_code == 422 and r.json()["field"] == "user_id"
    r = await owner.post(
        f"/inbox/c/{cid}/assign", data={"to": "pick", "user_id": "999999"}, headers=HTMX
    )
    assert r.status_code == 404


async def test_labels_snooze_and_the_label_filter(app: Any) -> None:
    owner, _ = await owner_of(app)
    cid = (await inbound_for(owner))["conversation_id"]
    head = await _head(owner, cid)
    assert "Inbox settings" in head.find("details", id="label-menu").text  # none yet
    vip = (await owner.post("/api/v1/labels", json={"name": "VIP"})).json()["id"]
    await owner.post("/api/v1/labels", json={"name": "Refund"})
    head = await _head(owner, cid)
    boxes = head.find("details", id="label-menu").find_all("input")
    assert len(boxes) == 2 and not any("checked" in b.attrs for b in boxes)

    head = parse((await _post(owner, f"/inbox/c/{cid}/labels", {"label_id": vip, "on": "1"})).text)
    assert head.find("p", **{"class": "label-chips"}).text == "VIP"
    rows = parse((await owner.get(f"/inbox/list?status=all&label={vip}", headers=HTMX)).text)
    [row] = rows.find_all("li", **{"data-conversation": str(cid)})
    assert "VIP" in row.find("span", **{"class": "row-tags"}).text
    page = parse((await owner.get("/inbox?status=all", headers={"accept": "text/html"})).text)
    assert {o.text for o in page.find("select", id="filter-label").find_all("option")} == {
        "Any label",
        "VIP",
        "Refund",
    }
    head = parse((await _post(owner, f"/inbox/c/{cid}/labels", {"label_id": vip})).text)
    assert head.find("p", **{"class": "label-chips"}).text == ""
    rows = parse((await owner.get(f"/inbox/list?status=all&label={vip}", headers=HTMX)).text)
    assert not rows.find_all("li", **{"data-conversation": str(cid)})

    head = parse((await _post(owner, f"/inbox/c/{cid}/snooze", {"minutes": "60"})).text)
    assert head.find("span", id="thread-status").text == "pending"
    assert head.find("span", id="thread-snoozed").text.startswith("snoozed until")
    r = await owner.post(f"/inbox/c/{cid}/snooze", data={"minutes": "soon"}, headers=HTMX)
    assert r.status_code == 422 and r.json()["field"] == "minutes"
    # Until a chosen time (the page sends the agent's choice in UTC); it wins over the preset.
    at = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    form = {"minutes": "60", "until": at.isoformat()}
    head = parse((await _post(owner, f"/inbox/c/{cid}/snooze", form)).text)
    assert head.find("span", id="thread-snoozed").find("time").attrs["datetime"] == at.isoformat()
    conversation = (await owner.get(f"/api/v1/inbox/conversations/{cid}")).json()
    assert datetime.fromisoformat(conversation["snoozed_until"]) == at
    for bad in ("tomorrow", (at - timedelta(days=3)).isoformat(), "2026-12-24T09:00"):
        form = {"minutes": "60", "until": bad}
        r = await owner.post(f"/inbox/c/{cid}/snooze", data=form, headers=HTMX)
        assert r.status_code == 422 and r.json()["field"] == "until", bad


async def test_internal_notes_show_in_the_thread_and_live_by_id(app: Any) -> None:
    owner, ws = await owner_of(app)
    cid = (await inbound_for(owner))["conversation_id"]
    r = await _post(owner, f"/inbox/c/{cid}/notes", {"body": "Card 4111 1111 1111 1111, call her"})
    note = parse(r.text).find("article")
    assert note.attrs["class"] == "note" and "Internal note" in note.text
    assert "4111 1111 1111 1111" not in note.text and "call her" in note.text
    note_id = note.attrs["data-note"]
    again = parse((await owner.get(f"/inbox/c/{cid}/notes/{note_id}", headers=HTMX)).text)
    assert again.find("article").attrs["id"] == f"note-{note_id}"
    thread = parse((await owner.get(f"/inbox/c/{cid}", headers=HTMX)).text)
    items = thread.find("div", id="messages").children
    kinds = [e.attrs.get("class", "").split()[0] for e in items if e.tag == "article"]
    assert kinds == ["msg", "note"]  # in time order: the customer wrote, then the note
    assert "conversation.note_added" in await _actions(ws)
    r = await owner.post(f"/inbox/c/{cid}/notes", data={"body": "  "}, headers=HTMX)
    assert r.status_code == 422
    assert (await owner.get(f"/inbox/c/{cid}/notes/999999", headers=HTMX)).status_code == 404


async def test_canned_responses_by_shortcut(
    client: Any, owner: Caller, channel: dict[str, Any]
) -> None:
    await delivered(client, now_stamped(load("message_text")))
    await drain()
    for shortcut, title in (("greet", "Greeting"), ("gift", "Gift cards"), ("bye", "Goodbye")):
        r = await owner.post(
            "/api/v1/canned-responses",
            json={"shortcut": shortcut, "title": title, "body": f"<b>{title}</b> text"},
        )
        assert r.status_code == 201, r.text
    found = parse((await owner.get("/inbox/canned?text=/g", headers=HTMX)).text)
    options = found.find_all("button")
    assert [o.text for o in options] == ["/gift Gift cards", "/greet Greeting"]
    assert options[1].attrs["data-canned"] == "<b>Greeting</b> text"  # an attribute, escaped
    one = parse((await owner.get("/inbox/canned?text=/gre", headers=HTMX)).text)
    assert [o.text for o in one.find_all("button")] == ["/greet Greeting"]
    none = await owner.get("/inbox/canned?text=/zz", headers=HTMX)
    assert "No canned response starts with /zz" in none.text
    typed = await owner.get("/inbox/canned", params={"text": "hello /gr"}, headers=HTMX)
    assert typed.status_code == 200 and typed.text.strip() == ""
    # The reply box (the window is open) asks for them as the agent types.
    cid = (await inbound_for(owner))["conversation_id"]
    thread = parse((await owner.get(f"/inbox/c/{cid}", headers=HTMX)).text)
    box = thread.find("textarea", id="reply-text")
    assert box.attrs["hx-get"] == "/inbox/canned" and box.attrs["aria-controls"] == "canned"
    assert thread.find("div", id="canned").attrs["role"] == "listbox"


async def test_contact_panel_attributes_consent_requests_and_restriction(app: Any) -> None:
    owner, ws = await owner_of(app)
    ids = await inbound_for(owner)
    cid, contact = ids["conversation_id"], ids["contact_id"]
    panel = parse((await owner.get(f"/inbox/c/{cid}/panel", headers=HTMX)).text)
    assert "None yet." in panel.find("form", id="attributes-form").text
    assert panel.find("h4", id="attributes-title")
    assert "None." in panel.text  # no data requests

    r = await _post(owner, f"/inbox/c/{cid}/attributes", {"new_key": "tier", "new_value": "Gold"})
    panel = parse(r.text)
    assert panel.find("input", name="attr.tier").attrs["value"] == "Gold"
    assert panel.find("p", **{"class": "saved"}).text == "Saved."
    api = (await owner.get(f"/api/v1/contacts/{contact}/panel")).json()
    assert api["attributes"] == {"tier": "Gold"}
    r = await _post(
        owner,
        f"/inbox/c/{cid}/attributes",
        {"attr.tier": "", "new_key": "card", "new_value": "4111 1111 1111 1111"},
    )
    panel = parse(r.text)
    assert not panel.find_all("input", name="attr.tier")
    assert "4111 1111 1111 1111" not in panel.find("input", name="attr.card").attrs["value"]
    bad = await owner.post(
        f"/inbox/c/{cid}/attributes", data={"new_key": "Bad Key", "new_value": "x"}, headers=HTMX
    )
    assert bad.status_code == 422 and bad.json()["field"] == "attributes"
    half = await owner.post(f"/inbox/c/{cid}/attributes", data={"new_key": "x"}, headers=HTMX)
    assert half.status_code == 422
    assert "contact.updated" in await _actions(ws)

    # A restriction request, approved: the panel lists it, agents see the banner, sends go away.
    r = await owner.post(
        "/api/v1/privacy/requests",
        json={"contact_id": contact, "kind": "restriction", "identity_checked": True},
    )
    assert r.status_code == 201, r.text
    request = r.json()
    panel = parse((await owner.get(f"/inbox/c/{cid}/panel", headers=HTMX)).text)
    listed = panel.find("ul", **{"aria-label": "Data requests"})
    assert request["reference"] in listed.text and "due" in listed.text
    assert not panel.find_all("p", **{"class": "restricted-banner"})
    r = await owner.post(f"/api/v1/privacy/requests/{request['id']}/approve")
    assert r.status_code == 200, r.text
    await drain()
    panel = parse((await owner.get(f"/inbox/c/{cid}/panel", headers=HTMX)).text)
    assert "Processing restricted." in panel.find("p", **{"class": "restricted-banner"}).text
    thread = parse((await owner.get(f"/inbox/c/{cid}", headers=HTMX)).text)
    assert thread.find("header").find("p", **{"class": "restricted-banner"})
    composer = thread.find("div", id="composer")
    assert not composer.find_all("form", id="reply-form")
    assert not composer.find_all("form", id="template-form")
    assert composer.find("form", id="note-form")  # the team can still write down what it did
    assert "Nothing can be sent" in composer.text


async def _counts(who: Caller) -> dict[str, str]:
    r = await who.get("/inbox/counts", headers=HTMX)
    assert r.status_code == 200, r.text
    shown = parse(r.text).find("p", id="unread-counts")
    return {a.attrs["data-count"]: a.find("strong").text for a in shown.find_all("a")}


async def test_opening_a_conversation_reads_it_and_the_counts_follow(app: Any) -> None:
    owner, _ = await owner_of(app)
    cid = (await inbound_for(owner))["conversation_id"]
    page = parse((await owner.get("/inbox", headers={"accept": "text/html"})).text)
    assert page.find("p", id="unread-counts").attrs["hx-trigger"] == "load"  # after the page
    assert await _counts(owner) == {"mine": "0", "unassigned": "1", "all": "1"}
    rows = parse((await owner.get("/inbox/list?status=all&unread=true", headers=HTMX)).text)
    assert rows.find_all("li", **{"data-conversation": str(cid)})
    assert (await owner.get(f"/inbox/c/{cid}", headers=HTMX)).status_code == 200
    rows = parse((await owner.get("/inbox/list?status=all&unread=true", headers=HTMX)).text)
    assert not rows.find_all("li", **{"data-conversation": str(cid)})
    assert await _counts(owner) == {"mine": "0", "unassigned": "0", "all": "0"}


async def test_settings_page_sets_round_robin_teams_labels_and_canned_replies(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent", name="Grace Hopper")
    channel_id = (await inbound_for(owner))["channel_id"]
    page = parse((await owner.get("/inbox", headers={"accept": "text/html"})).text)
    assert page.find("a", href="/inbox/settings")
    assert (await agent.get("/inbox/settings")).status_code == 403
    agent_page = parse((await agent.get("/inbox", headers={"accept": "text/html"})).text)
    assert not agent_page.find_all("a", href="/inbox/settings")

    async def form(url: str, data: dict[str, str]) -> None:
        r = await owner.post(url, data={"csrf_token": owner.csrf, **data})
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/inbox/settings"

    await form("/inbox/settings/teams", {"name": "Support"})
    team_id = (await owner.get("/api/v1/teams")).json()[0]["id"]
    await form(f"/inbox/settings/teams/{team_id}/members", {"user_id": str(agent.user.id)})
    await form(
        f"/inbox/settings/routing/{channel_id}", {"mode": "round_robin", "team_id": str(team_id)}
    )
    routing = (await owner.get("/api/v1/routing")).json()
    assert [(r["channel_id"], r["mode"], r["team_id"]) for r in routing] == [
        (channel_id, "round_robin", team_id)
    ]
    assert (await owner.get("/api/v1/teams")).json()[0]["members"] == [agent.user.id]
    await form("/inbox/settings/labels", {"name": "VIP"})
    await form(
        "/inbox/settings/canned", {"shortcut": "/Hello", "title": "Hi", "body": "Hello there!"}
    )
    page = parse((await owner.get("/inbox/settings")).text)
    assert page.find("select", id=f"mode-{channel_id}").find("option", selected="").text == (
        "Round-robin"
    )
    assert "Grace Hopper" in page.find("section", **{"aria-labelledby": "teams-heading"}).text
    assert "VIP" in page.find("section", **{"aria-labelledby": "labels-heading"}).text
    assert "/hello Hi" in page.find("section", **{"aria-labelledby": "canned-heading"}).text

    # A refusal shows the page again with the reason; nothing is half-done.
    r = await owner.post(
        "/inbox/settings/canned",
        data={"csrf_token": owner.csrf, "shortcut": "hello", "title": "Again", "body": "x"},
    )
    assert r.status_code == 409
    assert "/hello is taken" in parse(r.text).find("p", id="settings-error").text
    label_id = (await owner.get("/api/v1/labels")).json()[0]["id"]
    await form(f"/inbox/settings/labels/{label_id}/delete", {})
    assert (await owner.get("/api/v1/labels")).json() == []
    await form(
        f"/inbox/settings/teams/{team_id}/members", {"user_id": str(agent.user.id), "remove": "1"}
    )
    assert (await owner.get("/api/v1/teams")).json()[0]["members"] == []
