"""TOTP two-factor: enrol (encrypted secret, otpauth URI, QR code, text), confirm before it is
on, 10 single-use recovery codes shown once and stored hashed, sign-in in two steps with a fresh
session token, disabling needs a code or the password."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.account import RecoveryCode, User
from tests.accounts.support import BROWSER, csrf_from, submit
from tests.support.factories import DEFAULT_PASSWORD, make_user, signed_in


async def _enable(client, csrf: str) -> tuple[str, list[str]]:
    enrolment = await client.post("/api/v1/account/2fa/enrol", headers={"X-CSRF-Token": csrf})
    assert enrolment.status_code == 200, enrolment.text
    secret = enrolment.json()["secret"]
    confirmed = await client.post(
        "/api/v1/account/2fa/confirm",
        json={"code": pyotp.TOTP(secret).at(clock.now())},
        headers={"X-CSRF-Token": csrf},
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(timedelta(seconds=60))  # the next code is a new one
    return secret, confirmed.json()["recovery_codes"]


async def test_enrolment_shows_uri_qr_and_text_and_stores_the_secret_encrypted(client) -> None:
    user = await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    body = (await client.post("/api/v1/account/2fa/enrol", headers={"X-CSRF-Token": csrf})).json()
    secret = body["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert body["otpauth_uri"].startswith("otpauth://totp/ConnectX:ada%40example.com?secret=")
    assert secret in body["otpauth_uri"]
    assert body["qr_svg"].lstrip().startswith("<?xml") and "<svg" in body["qr_svg"]
    async with unit_of_work() as db:
        row = await db.get(User, user.id)
        assert row is not None and row.totp_secret_enc is not None
        assert secret.encode() not in row.totp_secret_enc
        assert row.totp_enabled_at is None  # not on until confirmed

    # Not yet confirmed: signing in needs no code.
    assert (await signed_in(client, "ada@example.com")) is not None


async def test_confirm_needs_a_right_code_then_gives_ten_single_use_recovery_codes(client) -> None:
    user = await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    secret = (
        await client.post("/api/v1/account/2fa/enrol", headers={"X-CSRF-Token": csrf})
    ).json()["secret"]
    wrong = await client.post(
        "/api/v1/account/2fa/confirm", json={"code": "123456"}, headers={"X-CSRF-Token": csrf}
    )
    assert wrong.status_code == 422
    assert "does not match" in wrong.json()["detail"]
    ok = await client.post(
        "/api/v1/account/2fa/confirm",
        json={"code": pyotp.TOTP(secret).at(clock.now())},
        headers={"X-CSRF-Token": csrf},
    )
    assert ok.status_code == 200
    codes = ok.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    async with unit_of_work() as db:
        stored = list((await db.execute(select(RecoveryCode))).scalars())
    assert len(stored) == 10 and all(r.user_id == user.id for r in stored)
    for code in codes:
        assert all(code.encode() not in r.code_hash for r in stored)
    profile = (await client.get("/api/v1/account/profile")).json()
    assert profile["two_factor_enabled"] is True


async def test_sign_in_needs_the_code_and_issues_a_fresh_token(client) -> None:
    await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    secret, _ = await _enable(client, csrf)

    first = await client.post(
        "/api/v1/auth/signin", json={"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    )
    assert first.status_code == 200
    assert first.json()["status"] == "second_factor_due"
    assert first.json()["next"] == "/signin/2fa"
    pending = client.cookies["cx_session"]
    # The password alone grants nothing.
    assert (await client.get("/api/v1/account/profile")).status_code == 401

    code = pyotp.TOTP(secret).at(clock.now())
    second = await client.post("/api/v1/auth/signin/2fa", json={"code": code})
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "signed_in"
    assert client.cookies["cx_session"] != pending
    assert (await client.get("/api/v1/account/profile")).status_code == 200

    # The same code is not accepted twice.
    await client.post(
        "/api/v1/auth/signin", json={"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    )
    replay = await client.post("/api/v1/auth/signin/2fa", json={"code": code})
    assert replay.status_code == 401


async def test_pending_sign_in_expires(client) -> None:
    await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    secret, _ = await _enable(client, csrf)
    await client.post(
        "/api/v1/auth/signin", json={"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    )
    clock.advance(timedelta(minutes=11))
    late = await client.post(
        "/api/v1/auth/signin/2fa", json={"code": pyotp.TOTP(secret).at(clock.now())}
    )
    assert late.status_code == 401
    assert "Sign in again" in late.json()["detail"]


async def test_a_recovery_code_signs_in_once(client) -> None:
    await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    _, codes = await _enable(client, csrf)
    signin = {"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    await client.post("/api/v1/auth/signin", json=signin)
    used = await client.post("/api/v1/auth/signin/2fa", json={"code": codes[3].upper()})
    assert used.status_code == 200
    await client.post("/api/v1/auth/signin", json=signin)
    again = await client.post("/api/v1/auth/signin/2fa", json={"code": codes[3]})
    assert again.status_code == 401
    other = await client.post("/api/v1/auth/signin/2fa", json={"code": codes[4]})
    assert other.status_code == 200


async def test_regenerating_recovery_codes_replaces_the_old_ones(client) -> None:
    await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    _, old = await _enable(client, csrf)
    refused = await client.post(
        "/api/v1/account/2fa/recovery-codes", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 422
    fresh = await client.post(
        "/api/v1/account/2fa/recovery-codes",
        json={"password": DEFAULT_PASSWORD},
        headers={"X-CSRF-Token": csrf},
    )
    assert fresh.status_code == 200
    new = fresh.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    signin = {"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    await client.post("/api/v1/auth/signin", json=signin)
    assert (await client.post("/api/v1/auth/signin/2fa", json={"code": old[0]})).status_code == 401
    assert (await client.post("/api/v1/auth/signin/2fa", json={"code": new[0]})).status_code == 200


async def test_disabling_needs_a_current_code_or_the_password(client) -> None:
    await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    secret, _ = await _enable(client, csrf)
    nothing = await client.post(
        "/api/v1/account/2fa/disable", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert nothing.status_code == 422
    wrong = await client.post(
        "/api/v1/account/2fa/disable",
        json={"password": "not-the-password-1"},
        headers={"X-CSRF-Token": csrf},
    )
    assert wrong.status_code == 401
    off = await client.post(
        "/api/v1/account/2fa/disable",
        json={"code": pyotp.TOTP(secret).at(clock.now())},
        headers={"X-CSRF-Token": csrf},
    )
    assert off.status_code == 204
    async with unit_of_work() as db:
        assert list((await db.execute(select(RecoveryCode))).scalars()) == []
    after = await client.post(
        "/api/v1/auth/signin", json={"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    )
    assert after.json()["status"] == "signed_in"


async def test_two_factor_through_the_pages(client) -> None:
    await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    account = await client.get("/account", headers=BROWSER)
    assert "Set up two-factor authentication" in account.text
    enrol = await client.post(
        "/account/2fa/enrol", data={"csrf_token": csrf_from(account.text)}, headers=BROWSER
    )
    assert enrol.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in enrol.text
    assert 'href="otpauth://totp/' in enrol.text
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', enrol.text)
    assert secret
    shown = await client.post(
        "/account/2fa/confirm",
        data={
            "code": pyotp.TOTP(secret.group(1)).at(clock.now()),
            "csrf_token": csrf_from(enrol.text),
        },
        headers=BROWSER,
    )
    assert shown.status_code == 200
    codes = re.search(r'<pre id="recovery-codes"[^>]*>(.*?)</pre>', shown.text, re.S)
    assert codes and len(codes.group(1).split()) == 10
    clock.advance(timedelta(seconds=60))

    # Sign out, then the two-step sign-in through the forms.
    await submit(client, "/account", "/signout", {})
    step1 = await submit(
        client, "/signin", "/signin", {"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    )
    assert step1.status_code == 303 and step1.headers["location"] == "/signin/2fa"
    wrong = await submit(client, "/signin/2fa", "/signin/2fa", {"code": "000000"})
    assert wrong.status_code == 401 and "That code is not right" in wrong.text
    step2 = await submit(
        client,
        "/signin/2fa",
        "/signin/2fa",
        {"code": pyotp.TOTP(secret.group(1)).at(clock.now())},
    )
    assert step2.status_code == 303 and step2.headers["location"] == "/workspace"
    assert (await client.get("/api/v1/account/profile")).status_code == 200
