"""The accounts pages in a browser's shoes: sign up, confirm by the mailed link, sign in and land
on /workspace; failed forms keep what was typed (never the password)."""

from __future__ import annotations

import re

from tests.accounts.support import BROWSER, SIGNUP, csrf_from, mailed_link, submit
from tests.support.factories import DEFAULT_PASSWORD, make_user, signed_in
from tests.support.mail import outbox


async def test_sign_up_verify_sign_in_reaches_the_workspace(client) -> None:
    created = await submit(client, "/signup", "/signup", SIGNUP)
    assert created.status_code == 201
    assert "Check your e-mail" in created.text

    link = (await mailed_link(SIGNUP["email"], "verify_email")).removeprefix("http://testserver")
    confirmed = await client.get(link, headers=BROWSER)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/signin"

    signin = await client.get("/signin", headers=BROWSER)
    assert "Your e-mail address is confirmed" in signin.text
    for name in ("email", "password"):
        assert f'<label for="{name}"' in signin.text
    done = await client.post(
        "/signin",
        data={
            "email": SIGNUP["email"],
            "password": SIGNUP["password"],
            "csrf_token": csrf_from(signin.text),
        },
        headers=BROWSER,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/workspace"
    assert "cx_session=" in done.headers["set-cookie"]
    account = await client.get("/account", headers=BROWSER)
    assert account.status_code == 200
    assert "Ada Lovelace" in account.text and "+447911123456" in account.text


async def test_a_refused_sign_up_keeps_the_fields_but_not_the_password(client) -> None:
    refused = await submit(client, "/signup", "/signup", {**SIGNUP, "phone": "12345"})
    assert refused.status_code == 422
    assert "Phone number is not valid" in refused.text
    assert 'value="Ada Lovelace"' in refused.text and 'value="ada@example.com"' in refused.text
    assert SIGNUP["password"] not in refused.text
    assert re.search(r'id="phone"[^>]*aria-invalid="true"', refused.text)


async def test_wrong_password_page_and_next_target(client) -> None:
    await make_user(email="ada@example.com")
    wrong = await submit(
        client, "/signin", "/signin", {"email": "ada@example.com", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == 401
    assert "The e-mail address or password is not right" in wrong.text
    assert 'value="ada@example.com"' in wrong.text

    page = await client.get("/signin?next=/account%23sessions", headers=BROWSER)
    assert 'name="next" value="/account#sessions"' in page.text
    done = await client.post(
        "/signin",
        data={
            "email": "ada@example.com",
            "password": DEFAULT_PASSWORD,
            "next": "/account#sessions",
            "csrf_token": csrf_from(page.text),
        },
        headers=BROWSER,
    )
    assert done.headers["location"] == "/account#sessions"


async def test_next_never_leaves_the_site(client) -> None:
    await make_user(email="ada@example.com")
    done = await submit(
        client,
        "/signin",
        "/signin",
        {"email": "ada@example.com", "password": DEFAULT_PASSWORD, "next": "//evil.example/x"},
    )
    assert done.headers["location"] == "/workspace"


async def test_unconfirmed_account_can_ask_for_the_link_again_from_sign_in(client) -> None:
    await make_user(email="ada@example.com", verified=False)
    blocked = await submit(
        client, "/signin", "/signin", {"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    )
    assert blocked.status_code == 403
    assert "Confirm your e-mail address first" in blocked.text
    assert 'action="/verify/resend"' in blocked.text
    resent = await client.post(
        "/verify/resend",
        data={"email": "ada@example.com", "csrf_token": csrf_from(blocked.text)},
        headers=BROWSER,
    )
    assert resent.status_code == 200 and "Check your e-mail" in resent.text
    assert len(await outbox(to="ada@example.com", kind="verify_email")) == 1


async def test_signed_in_visitors_skip_the_sign_in_page_and_can_sign_out(client) -> None:
    await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    assert (await client.get("/signin", headers=BROWSER)).headers["location"] == "/workspace"
    page = await client.get("/signout", headers=BROWSER)
    assert page.status_code == 200
    out = await client.post("/signout", data={"csrf_token": csrf_from(page.text)}, headers=BROWSER)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert (await client.get("/api/v1/account/profile")).status_code == 401
    assert "You are signed out" in (await client.get("/signin", headers=BROWSER)).text


async def test_profile_and_password_forms_on_the_account_page(client) -> None:
    await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    bad = await submit(
        client,
        "/account",
        "/account/profile",
        {"name": "Ada King", "phone": "not a phone", "billing_address": ""},
    )
    assert bad.status_code == 422 and "Phone number is not valid" in bad.text
    assert (await client.get("/api/v1/account/profile")).json()["name"] == "Ada Lovelace"
    good = await submit(
        client,
        "/account",
        "/account/profile",
        {"name": "Ada King", "phone": "+971 50 123 4567", "billing_address": "1 Main St"},
    )
    assert good.status_code == 303
    profile = (await client.get("/api/v1/account/profile")).json()
    assert profile["name"] == "Ada King" and profile["phone"] == "+971501234567"
    assert profile["billing_address"] == "1 Main St"

    wrong = await submit(
        client,
        "/account",
        "/account/password",
        {"current_password": "not-the-current-one", "new_password": "a-brand-new-phrase"},
    )
    assert wrong.status_code == 401 and "current password is not right" in wrong.text
    changed = await submit(
        client,
        "/account",
        "/account/password",
        {"current_password": DEFAULT_PASSWORD, "new_password": "a-brand-new-phrase"},
    )
    assert changed.status_code == 303
    assert (await client.get("/api/v1/account/profile")).status_code == 200


async def test_profile_update_is_audited_with_field_names_only(client) -> None:
    from sqlalchemy import select

    from connectx.db.session import unit_of_work
    from connectx.models.audit import AuditEvent

    user = await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    response = await client.patch(
        "/api/v1/account/profile",
        json={"phone": "+971501234567", "billing_address": "2 Side St"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200
    async with unit_of_work() as db:
        events = [
            e
            for e in (await db.execute(select(AuditEvent))).scalars()
            if e.action == "account.updated"
        ]
    assert len(events) == 1
    event = events[0]
    assert event.actor == event.subject == f"user:{user.id}"
    assert event.data == {"fields": ["phone", "billing_address"]}
    assert "971" not in str(event.data) and "Side" not in str(event.data)


async def test_the_api_is_described_in_openapi(client) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/auth/signup",
        "/api/v1/auth/verify",
        "/api/v1/auth/signin",
        "/api/v1/auth/signin/2fa",
        "/api/v1/auth/signout",
        "/api/v1/auth/signout-everywhere",
        "/api/v1/auth/forgot",
        "/api/v1/auth/reset",
        "/api/v1/account/profile",
        "/api/v1/account/password",
        "/api/v1/account/2fa/enrol",
        "/api/v1/account/2fa/confirm",
        "/api/v1/account/2fa/disable",
        "/api/v1/account/2fa/recovery-codes",
        "/api/v1/account/sessions",
        "/api/v1/account/sessions/{session_id}",
    ):
        assert path in paths, path
    assert "/signin" not in paths  # pages stay out of the API description
