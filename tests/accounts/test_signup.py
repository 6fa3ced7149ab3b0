"""Sign-up (policy §2.1, §3): validated input, encrypted storage, the marketing choice in the
consent ledger, duplicate addresses, the mailed one-time verification link."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connectx.accounts.service import MARKETING_WORDING, NOTICE_VERSION
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.account import User
from connectx.models.audit import AuditEvent
from connectx.models.consent import ConsentRecord
from tests.accounts.support import BROWSER, SIGNUP, mailed_link, submit, token_of
from tests.support.mail import outbox


async def _consents() -> list[ConsentRecord]:
    async with unit_of_work() as db:
        return list((await db.execute(select(ConsentRecord))).scalars())


async def test_api_signup_stores_e164_phone_encrypted_and_records_the_unticked_choice(
    client,
) -> None:
    response = await client.post("/api/v1/auth/signup", json=SIGNUP)
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    assert "Check your e-mail" in response.json()["detail"]

    async with unit_of_work() as db:
        user = (await db.execute(select(User))).scalar_one()
        audit = list((await db.execute(select(AuditEvent))).scalars())
    assert user.id == user_id
    assert b"ada@example.com" not in user.email_enc and b"Lovelace" not in user.name_enc
    assert b"7911" not in user.phone_enc
    assert user.password_hash.startswith("$argon2id$")
    assert user.email_verified_at is None

    [record] = await _consents()
    assert (record.subject, record.purpose, record.channel) == (
        f"user:{user_id}",
        "marketing",
        "email",
    )
    assert record.granted is False
    assert record.source == "signup_form"
    assert record.wording == MARKETING_WORDING
    assert record.notice_version == NOTICE_VERSION == "2025-08-02"
    assert record.created_at is not None

    created = [e for e in audit if e.action == "account.created"]
    assert len(created) == 1 and created[0].subject == f"user:{user_id}"
    assert "ada" not in str(created[0].data).lower()


async def test_ticked_marketing_choice_is_recorded_as_given(client) -> None:
    response = await client.post("/api/v1/auth/signup", json={**SIGNUP, "marketing_opt_in": True})
    assert response.status_code == 201
    [record] = await _consents()
    assert record.granted is True


async def test_the_form_shows_the_choice_unticked_with_the_recorded_wording(client) -> None:
    page = await client.get("/signup", headers=BROWSER)
    assert page.status_code == 200
    html = page.text
    for name in ("name", "email", "phone", "password", "billing_address", "marketing_opt_in"):
        assert f'<label for="{name}"' in html, name
        assert f'id="{name}"' in html, name
    checkbox = html[
        html.index('id="marketing_opt_in"') - 40 : html.index('id="marketing_opt_in"') + 80
    ]
    assert "checked" not in checkbox
    assert MARKETING_WORDING in html

    done = await submit(
        client,
        "/signup",
        "/signup",
        {**SIGNUP, "billing_address": "1 Main Street\nDubai", "marketing_opt_in": "yes"},
    )
    assert done.status_code == 201
    assert "Check your e-mail" in done.text
    [record] = await _consents()
    assert record.granted is True and record.wording == MARKETING_WORDING


async def test_bad_input_is_422_with_a_message_naming_the_field(client) -> None:
    cases = {
        "email": ({"email": "not-an-address"}, "valid e-mail address"),
        "phone": ({"phone": "12"}, "international form"),
        "password": ({"password": "short pass"}, "at least 12 characters"),
        "common": ({"password": "Password1234"}, "commonly used"),
        "long": ({"password": "x" * 100 + "y" * 29}, "at most 128"),
        "own email": ({"password": "ada@example.com"}, "not your e-mail"),
        "name": ({"name": "   "}, "Enter your name"),
    }
    for label, (change, message) in cases.items():
        response = await client.post("/api/v1/auth/signup", json={**SIGNUP, **change})
        assert response.status_code == 422, label
        assert response.headers["content-type"].startswith("application/problem+json")
        assert message in response.json()["detail"], (label, response.json())
    async with unit_of_work() as db:
        assert (await db.execute(select(User))).first() is None


async def test_password_rules_are_length_not_composition(client) -> None:
    """NIST SP 800-63B: any 12+ characters, spaces and any script allowed, no composition
    rules."""
    response = await client.post(
        "/api/v1/auth/signup", json={**SIGNUP, "password": "все мы здесь немного"}
    )
    assert response.status_code == 201, response.text


async def test_a_second_account_with_the_same_address_is_409(client) -> None:
    assert (await client.post("/api/v1/auth/signup", json=SIGNUP)).status_code == 201
    again = await client.post(
        "/api/v1/auth/signup", json={**SIGNUP, "email": "  ADA@Example.COM ", "name": "Other"}
    )
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]
    assert "Ada" not in again.text


async def test_verification_link_is_mailed_single_use_and_confirms_the_address(client) -> None:
    await client.post("/api/v1/auth/signup", json=SIGNUP)
    link = await mailed_link("ada@example.com", "verify_email")
    assert link.startswith("http://testserver/verify?token=")
    [message] = await outbox(to="ada@example.com")
    assert "24 hours" in message.body

    blocked = await client.post(
        "/api/v1/auth/signin", json={"email": SIGNUP["email"], "password": SIGNUP["password"]}
    )
    assert blocked.status_code == 403
    assert "Confirm your e-mail address" in blocked.json()["detail"]

    opened = await client.get(link.removeprefix("http://testserver"), headers=BROWSER)
    assert opened.status_code == 303 and opened.headers["location"] == "/signin"
    assert opened.headers["referrer-policy"] == "no-referrer"
    signin_page = await client.get("/signin", headers=BROWSER)
    assert "Your e-mail address is confirmed" in signin_page.text

    again = await client.post("/api/v1/auth/verify", json={"token": token_of(link)})
    assert again.status_code == 410
    assert "already used" in again.json()["detail"]

    signed = await client.post(
        "/api/v1/auth/signin", json={"email": SIGNUP["email"], "password": SIGNUP["password"]}
    )
    assert signed.status_code == 200
    assert signed.json()["next"] == "/workspace"
    async with unit_of_work() as db:
        actions = [e.action for e in (await db.execute(select(AuditEvent))).scalars()]
    assert "account.email_verified" in actions


async def test_verification_link_expires_after_24_hours(client) -> None:
    await client.post("/api/v1/auth/signup", json=SIGNUP)
    token = token_of(await mailed_link("ada@example.com", "verify_email"))
    clock.advance(timedelta(hours=24, seconds=1))
    expired = await client.post("/api/v1/auth/verify", json={"token": token})
    assert expired.status_code == 410
    assert "expired" in expired.json()["detail"]
    page = await client.get(f"/verify?token={token}", headers=BROWSER)
    assert page.status_code == 410
    assert "Send a new link" in page.text


async def test_resend_mails_a_new_link_and_the_old_one_stops_working(client) -> None:
    await client.post("/api/v1/auth/signup", json=SIGNUP)
    old = token_of(await mailed_link("ada@example.com", "verify_email"))
    resent = await client.post("/api/v1/auth/verify/resend", json={"email": "ada@example.com"})
    unknown = await client.post("/api/v1/auth/verify/resend", json={"email": "nobody@example.com"})
    assert resent.status_code == unknown.status_code == 202
    assert resent.json() == unknown.json()
    new = token_of(await mailed_link("ada@example.com", "verify_email"))
    assert new != old
    assert len(await outbox(kind="verify_email")) == 2
    assert (await client.post("/api/v1/auth/verify", json={"token": old})).status_code == 410
    assert (await client.post("/api/v1/auth/verify", json={"token": new})).status_code == 200
