"""The workspace pages in HTML: forms with real labels post back (with the CSRF token) and
redirect with a message; mistakes are shown on the form; the new API key is shown once."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from tests.workspaces.helpers import (
    Caller,
    invitation_token,
    join,
    member_id,
    new_client,
    owner_of,
    person,
)

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def page(caller: Caller, url: str, status: int = 200) -> str:
    r = await caller.client.get(url, headers=HTML)
    assert r.status_code == status, r.text[:500]
    return r.text


async def submit(caller: Caller, url: str, data: dict[str, Any], status: int = 303) -> Any:
    r = await caller.client.post(url, data={"csrf_token": caller.csrf, **data}, headers=HTML)
    assert r.status_code == status, r.text[:800]
    return r


def labelled(html: str, control_id: str) -> bool:
    return f'for="{control_id}"' in html and f'id="{control_id}"' in html


async def test_pages_need_a_signed_in_person(app: Any) -> None:
    async with new_client(app) as anonymous:
        for url in ("/workspace", "/workspace/members", "/workspace/api-keys"):
            r = await anonymous.get(url, headers=HTML)
            assert r.status_code == 303
            assert parse_qs(urlsplit(r.headers["location"]).query)["next"] == [url]


async def test_create_a_workspace_from_the_page(app: Any) -> None:
    ada = await person(app)
    html = await page(ada, "/workspace")
    assert "Create a workspace" in html
    for control in ("workspace-name-input", "workspace-address-input", "workspace-phone-input"):
        assert labelled(html, control)

    # A mistake keeps what was typed and says what to fix.
    r = await submit(ada, "/workspace", {"name": "Acme Trading", "phone": "12"}, status=422)
    assert "Phone number is not valid" in r.text and 'value="Acme Trading"' in r.text

    # Without the CSRF token nothing happens.
    r = await ada.client.post("/workspace", data={"name": "Acme Trading"}, headers=HTML)
    assert r.status_code == 403
    assert (await ada.get("/api/v1/workspaces")).json() == []

    r = await submit(ada, "/workspace", {"name": "Acme Trading", "phone": "+971 50 123 4567"})
    assert r.headers["location"] == "/workspace"
    html = await page(ada, "/workspace")
    assert 'id="workspace-name">Acme Trading<' in html
    assert 'id="workspace-role">owner<' in html
    assert "+971501234567" in html
    assert "Workspace created" in html  # the flash message


async def test_invitations_for_you_on_the_overview(app: Any) -> None:
    owner, _ = await owner_of(app, "Acme Trading")
    await owner.post("/api/v1/workspace/invitations", json={"email": "lee@example.com"})
    lee = await person(app, email="lee@example.com")
    html = await page(lee, "/workspace")
    match = re.search(r'id="join-(\d+)">Join Acme Trading<', html)
    assert match
    await submit(lee, f"/invitations/{match.group(1)}/accept", {})
    html = await page(lee, "/workspace")
    assert "Welcome to Acme Trading" in html and 'id="workspace-role">agent<' in html
    assert 'id="invitations-for-you"' not in html


async def test_switch_workspace_from_the_page(app: Any) -> None:
    ada, first = await owner_of(app, "First Co")
    await ada.post("/api/v1/workspaces", json={"name": "Second Co"})
    html = await page(ada, "/workspace")
    assert 'id="workspace-name">Second Co<' in html
    assert f'id="switch-{first}"' in html
    await submit(ada, "/workspace/switch", {"workspace_id": str(first)})
    assert 'id="workspace-name">First Co<' in await page(ada, "/workspace")


async def test_profile_settings_form(app: Any) -> None:
    owner, _ = await owner_of(app, "Acme Trading")
    agent = await join(app, owner, "agent")
    html = await page(owner, "/workspace/settings")
    for control in ("settings-name", "settings-address", "settings-phone"):
        assert labelled(html, control)
    r = await submit(
        owner,
        "/workspace/settings",
        {"name": "Acme Trading", "address": "1 Quay St", "phone": "bad"},
        status=422,
    )
    assert 'id="settings-error"' in r.text and "1 Quay St" in r.text
    await submit(
        owner,
        "/workspace/settings",
        {"name": "Acme Trading FZE", "address": "1 Quay St", "phone": ""},
    )
    assert (await owner.get("/api/v1/workspace")).json()["name"] == "Acme Trading FZE"

    # Agents see the profile but get no form, and cannot post one.
    html = await page(agent, "/workspace/settings")
    assert "Acme Trading FZE" in html and 'id="settings-form"' not in html
    await submit(agent, "/workspace/settings", {"name": "Agent Co"}, status=403)


async def test_members_page_invites_changes_roles_and_removes(app: Any) -> None:
    owner, _ = await owner_of(app, "Acme Trading", name="Ada Lovelace")
    agent = await join(app, owner, "agent", name="Grace Hopper")
    html = await page(owner, "/workspace/members")
    assert "Ada Lovelace" in html and "Grace Hopper" in html and agent.email in html
    assert labelled(html, "invite-email") and labelled(html, "invite-role")

    r = await submit(owner, "/workspace/invitations", {"email": "nope"}, status=422)
    assert 'id="invite-error"' in r.text and 'value="nope"' in r.text
    await submit(owner, "/workspace/invitations", {"email": "new@example.com", "role": "analyst"})
    html = await page(owner, "/workspace/members")
    assert "Invitation sent" in html and "new@example.com" in html
    assert await invitation_token("new@example.com")
    inv_id = re.search(r'id="invitation-(\d+)"', html)
    assert inv_id
    await submit(owner, f"/workspace/invitations/{inv_id.group(1)}/revoke", {})
    assert "new@example.com" not in await page(owner, "/workspace/members")

    mid = await member_id(owner, agent.user.id)
    assert labelled(html, f"role-{mid}")
    await submit(owner, f"/workspace/members/{mid}/role", {"role": "analyst"})
    assert (await agent.get("/api/v1/me")).json()["role"] == "analyst"
    await submit(owner, f"/workspace/members/{mid}/remove", {})
    assert "Grace Hopper" not in await page(owner, "/workspace/members")
    assert (await agent.get("/api/v1/me")).status_code == 401

    # The last owner is protected on the page too: a clear error, nothing changes.
    own = await member_id(owner, owner.user.id)
    r = await submit(owner, f"/workspace/members/{own}/remove", {}, status=409)
    assert "last owner" in r.text


async def test_api_keys_page_shows_the_key_once(app: Any) -> None:
    owner, _ = await owner_of(app)
    html = await page(owner, "/workspace/api-keys")
    assert labelled(html, "key-name") and labelled(html, "scope-read")

    r = await submit(
        owner,
        "/workspace/api-keys",
        {"name": "CRM sync", "scopes": ["read", "write"]},
        status=201,
    )
    assert r.headers["cache-control"] == "no-store"
    match = re.search(r'id="new-key-value">(cx_[^<]+)<', r.text)
    assert match
    secret = match.group(1)

    html = await page(owner, "/workspace/api-keys")
    assert secret not in html and secret[:12] in html and "never" in html

    async with new_client(app) as c:
        me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200 and me.json()["scopes"] == ["read", "write"]
    html = await page(owner, "/workspace/api-keys")
    row = re.search(r'<td class="last-used">(.*?)</td>', html, re.S)
    assert row and "<time" in row.group(1)

    r = await submit(owner, "/workspace/api-keys", {"name": "", "scopes": ["read"]}, status=422)
    assert 'id="key-error"' in r.text

    key_id = re.search(r'id="api-key-(\d+)"', html)
    assert key_id
    await submit(owner, f"/workspace/api-keys/{key_id.group(1)}/revoke", {})
    async with new_client(app) as c:
        me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 401

    agent = await join(app, owner, "agent")
    await page(agent, "/workspace/api-keys", status=403)


async def test_invitation_link_page(app: Any) -> None:
    owner, ws_id = await owner_of(app, "Acme Trading")
    await owner.post(
        "/api/v1/workspace/invitations", json={"email": "ivy@example.com", "role": "agent"}
    )
    token = await invitation_token("ivy@example.com")
    link = f"/invitations/accept?token={token}"

    async with new_client(app) as anonymous:
        r = await anonymous.get(link, headers=HTML)
        assert r.status_code == 200
        assert "Join Acme Trading" in r.text and "ivy@example.com" in r.text
        back = "/signin?next=" + quote(link, safe="")
        assert 'id="accept-signin"' in r.text and back.replace("&", "&amp;") in r.text
        assert r.headers["referrer-policy"] == "no-referrer"
        r = await anonymous.get("/invitations/accept?token=nonsense", headers=HTML)
        assert r.status_code == 404 and "not valid" in r.text

    ivy = await person(app, email="ivy@example.com")
    html = await page(ivy, link)
    assert 'id="accept-invitation"' in html
    r = await submit(ivy, "/invitations/accept", {"token": token})
    assert r.headers["location"] == "/workspace"
    me = (await ivy.get("/api/v1/me")).json()
    assert me["workspace"]["id"] == ws_id and me["role"] == "agent"
    r = await ivy.client.get(link, headers=HTML)
    assert r.status_code == 410 and "already used" in r.text
