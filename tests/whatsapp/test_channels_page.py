"""The /workspace/channels page: admins connect and disconnect numbers with a form."""

from __future__ import annotations

from typing import Any

from connectx.models.channel import Channel
from tests.whatsapp.support import APP_SECRET, channel_body, count
from tests.workspaces.helpers import Caller, join


def form(**kw: Any) -> dict[str, str]:
    body = {k: v for k, v in channel_body(**kw).items() if v is not None}
    return {k: str(v) for k, v in body.items()}


async def test_admin_connects_and_disconnects_through_the_page(owner: Caller) -> None:
    page = await owner.get("/workspace/channels")
    assert page.status_code == 200
    assert 'id="connect-channel-form"' in page.text and "No number connected yet" in page.text
    assert "http://testserver/webhooks/whatsapp" in page.text

    r = await owner.post(
        "/workspace/channels", data={**form(), "csrf_token": owner.csrf}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    page = await owner.get("/workspace/channels")
    assert "Connected +15550783881" in page.text
    assert "106540352242922" in page.text
    assert APP_SECRET not in page.text and "EAAG-test-access-token" not in page.text

    (channel,) = (await owner.get("/api/v1/channels")).json()["items"]
    r = await owner.post(
        f"/workspace/channels/{channel['id']}/disconnect",
        data={"csrf_token": owner.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = await owner.get("/workspace/channels")
    assert "Disconnected +15550783881" in page.text and "disconnected 20" in page.text


async def test_a_mistake_is_shown_with_what_was_typed_but_no_secret(owner: Caller) -> None:
    r = await owner.post(
        "/workspace/channels",
        data={**form(pnid="12ab"), "csrf_token": owner.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert 'id="channel-error"' in r.text and "phone number ID" in r.text
    assert 'value="12ab"' in r.text
    assert APP_SECRET not in r.text and "EAAG-test-access-token" not in r.text
    assert await count(Channel) == 0


async def test_the_form_needs_its_csrf_token_and_an_admin(app: Any, owner: Caller) -> None:
    r = await owner.client.post("/workspace/channels", data=form(), follow_redirects=False)
    assert r.status_code == 403
    agent = await join(app, owner, "agent")
    assert (await agent.get("/workspace/channels")).status_code == 403
    r = await agent.post(
        "/workspace/channels", data={**form(), "csrf_token": agent.csrf}, follow_redirects=False
    )
    assert r.status_code == 403
    assert await count(Channel) == 0
