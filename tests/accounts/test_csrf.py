"""CSRF: cookie-authenticated state changes need the session's token; anonymous forms need the
double-submit cookie; API keys are exempt; a refusal is 403 with a clear message."""

from __future__ import annotations

import httpx

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.kit.crypto import token_hash
from connectx.models.api_key import ApiKey
from connectx.models.workspace import Workspace
from tests.accounts.support import BROWSER, SIGNUP, csrf_from
from tests.support.factories import make_user, signed_in


async def test_session_state_changes_without_the_token_are_refused(client) -> None:
    await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    change = {"name": "Mallory"}
    missing = await client.patch("/api/v1/account/profile", json=change)
    assert missing.status_code == 403
    assert "security token (CSRF)" in missing.json()["detail"]
    wrong = await client.patch(
        "/api/v1/account/profile", json=change, headers={"X-CSRF-Token": "x" + csrf}
    )
    assert wrong.status_code == 403
    delete = await client.delete("/api/v1/account/sessions/1")
    assert delete.status_code == 403
    signout = await client.post("/api/v1/auth/signout")
    assert signout.status_code == 403
    assert (await client.get("/api/v1/account/profile")).json()["name"] == "Ada Lovelace"

    ok = await client.patch("/api/v1/account/profile", json=change, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200


async def test_a_cross_site_form_post_to_the_account_pages_is_refused(client) -> None:
    await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    forged = await client.post(
        "/account/profile",
        data={"name": "Mallory", "phone": "+447911123456", "billing_address": ""},
        headers=BROWSER,
    )
    assert forged.status_code == 403
    assert "security token" in forged.text
    page = await client.get("/account", headers=BROWSER)
    token = csrf_from(page.text)
    assert f'<meta name="csrf-token" content="{token}">' in page.text
    saved = await client.post(
        "/account/profile",
        data={
            "name": "Ada King",
            "phone": "+447911123456",
            "billing_address": "",
            "csrf_token": token,
        },
        headers=BROWSER,
    )
    assert saved.status_code == 303
    assert (await client.get("/api/v1/account/profile")).json()["name"] == "Ada King"


async def test_anonymous_forms_need_the_double_submit_cookie(app) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        page = await browser.get("/signup", headers=BROWSER)
        token = csrf_from(page.text)
        assert "cx_csrf=" in page.headers["set-cookie"]
        assert "HttpOnly" in page.headers["set-cookie"]
        assert browser.cookies["cx_csrf"] == token
    # A forger's page can put any value in the field, but cannot set our cookie.
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as victim:
        forged = await victim.post(
            "/signin",
            data={"email": "x@example.com", "password": "whatever-it-is", "csrf_token": token},
            headers=BROWSER,
        )
        assert forged.status_code == 403
        assert "form has expired or was not sent from this site" in forged.text
        mismatch = await victim.post(
            "/signup",
            data={**SIGNUP, "csrf_token": "guess"},
            headers=BROWSER,
        )
        assert mismatch.status_code == 403


async def test_api_key_requests_are_exempt(client) -> None:
    async with unit_of_work() as db:
        workspace = Workspace(name="Acme", created_at=clock.now(), updated_at=clock.now())
        db.add(workspace)
        await db.flush()
        db.add(
            ApiKey(
                workspace_id=workspace.id,
                name="ci",
                prefix="cx_test",
                key_hash=token_hash("cx_test_key_0123456789"),
                scopes=["admin"],
                created_at=clock.now(),
            )
        )
    response = await client.post(
        "/api/v1/auth/signout", headers={"authorization": "Bearer cx_test_key_0123456789"}
    )
    # Past the CSRF check; refused only because an API key is not a person with a session.
    assert response.status_code == 403
    assert "signed-in person" in response.json()["detail"]
