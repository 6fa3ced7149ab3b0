"""Brute force: per-account and per-IP limits on sign-in, 2FA codes and mailed-link requests,
with a lockout answered 429 + Retry-After and a message saying when to try again; it never tells
whether an address has an account."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import select

from connectx.config import get_settings, reset_settings
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.account import LoginAttempt
from tests.accounts.support import BROWSER, csrf_from
from tests.support.factories import DEFAULT_PASSWORD, make_user, signed_in
from tests.support.mail import outbox


async def _signin(client, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/signin", json={"email": email, "password": password})


async def test_account_lockout_after_repeated_failures_with_a_clear_message(client) -> None:
    await make_user(email="ada@example.com")
    limit = get_settings().login_max_failures_account
    for _ in range(limit):
        failed = await _signin(client, "ada@example.com", "wrong-password-guess")
        assert failed.status_code == 401
    locked = await _signin(client, "ada@example.com", DEFAULT_PASSWORD)
    assert locked.status_code == 429  # even the right password waits
    retry = int(locked.headers["retry-after"])
    lockout_s = get_settings().login_lockout_minutes * 60
    assert 0 < retry <= lockout_s
    body = locked.json()
    assert "Too many failed sign-in attempts" in body["detail"]
    assert "UTC" in body["detail"] and "try again then" in body["detail"]
    assert body["retry_after"] == retry and body["retry_at"]

    clock.advance(timedelta(seconds=retry + 1))
    assert (await _signin(client, "ada@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_lockout_looks_the_same_for_an_address_without_an_account(client) -> None:
    await make_user(email="ada@example.com")
    limit = get_settings().login_max_failures_account
    answers = {}
    for email in ("ada@example.com", "nobody@example.com"):
        for _ in range(limit):
            first = await _signin(client, email, "wrong-password-guess")
        locked = await _signin(client, email, "wrong-password-guess")
        answers[email] = (first.status_code, first.json()["detail"], locked.status_code)
    assert answers["ada@example.com"] == answers["nobody@example.com"]
    assert answers["ada@example.com"][2] == 429


async def test_a_success_clears_the_account_counter(client) -> None:
    await make_user(email="ada@example.com")
    limit = get_settings().login_max_failures_account
    for _ in range(limit - 1):
        await _signin(client, "ada@example.com", "wrong-password-guess")
    assert (await _signin(client, "ada@example.com", DEFAULT_PASSWORD)).status_code == 200
    for _ in range(limit - 1):
        assert (await _signin(client, "ada@example.com", "wrong-guess-again")).status_code == 401
    assert (await _signin(client, "ada@example.com", DEFAULT_PASSWORD)).status_code == 200


async def test_per_ip_limit_across_many_addresses(app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTX_LOGIN_MAX_FAILURES_IP", "6")
    reset_settings()
    try:
        await make_user(email="ada@example.com")
        attacker = httpx.ASGITransport(app=app, client=("198.51.100.9", 4000))
        elsewhere = httpx.ASGITransport(app=app, client=("192.0.2.50", 4000))
        async with (
            httpx.AsyncClient(transport=attacker, base_url="http://testserver") as bad,
            httpx.AsyncClient(transport=elsewhere, base_url="http://testserver") as good,
        ):
            for n in range(6):
                response = await _signin(bad, f"victim{n}@example.com", "password-guess-1")
                assert response.status_code == 401
            blocked = await _signin(bad, "ada@example.com", DEFAULT_PASSWORD)
            assert blocked.status_code == 429
            assert "from your network" in blocked.json()["detail"]
            # Another network is not affected.
            assert (await _signin(good, "ada@example.com", DEFAULT_PASSWORD)).status_code == 200
    finally:
        monkeypatch.undo()
        reset_settings()


async def test_attempts_are_stored_as_keyed_hashes_only(app) -> None:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await _signin(c, "ada@example.com", "wrong-password-guess")
    async with unit_of_work() as db:
        rows = list((await db.execute(select(LoginAttempt))).scalars())
    assert {r.key_kind for r in rows} == {"account", "ip"}
    for row in rows:
        assert len(row.key_hash) == 32
        assert b"ada" not in row.key_hash and b"198.51" not in row.key_hash
        assert "ada" not in (row.detail or "") and "198.51" not in (row.detail or "")


async def test_the_sign_in_page_shows_the_lockout(client) -> None:
    await make_user(email="ada@example.com")
    for _ in range(get_settings().login_max_failures_account):
        await _signin(client, "ada@example.com", "wrong-password-guess")
    page = await client.get("/signin", headers=BROWSER)
    locked = await client.post(
        "/signin",
        data={
            "email": "ada@example.com",
            "password": DEFAULT_PASSWORD,
            "csrf_token": csrf_from(page.text),
        },
        headers=BROWSER,
    )
    assert locked.status_code == 429
    assert locked.headers["retry-after"]
    assert "Too many failed sign-in attempts" in locked.text
    assert DEFAULT_PASSWORD not in locked.text


async def test_two_factor_codes_are_limited_too(client) -> None:
    await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    secret = (
        await client.post("/api/v1/account/2fa/enrol", headers={"X-CSRF-Token": csrf})
    ).json()["secret"]
    code = pyotp.TOTP(secret).at(clock.now())
    confirmed = await client.post(
        "/api/v1/account/2fa/confirm", json={"code": code}, headers={"X-CSRF-Token": csrf}
    )
    assert confirmed.status_code == 200
    clock.advance(timedelta(seconds=60))

    due = await _signin(client, "ada@example.com", DEFAULT_PASSWORD)
    assert due.json()["status"] == "second_factor_due"
    for _ in range(get_settings().login_max_failures_account):
        wrong = await client.post("/api/v1/auth/signin/2fa", json={"code": "000000"})
        assert wrong.status_code == 401
    right = pyotp.TOTP(secret).at(clock.now())
    locked = await client.post("/api/v1/auth/signin/2fa", json={"code": right})
    assert locked.status_code == 429
    assert "wrong two-factor codes" in locked.json()["detail"]
    assert int(locked.headers["retry-after"]) > 0


async def test_password_reset_and_verification_requests_are_limited(client) -> None:
    await make_user(email="ada@example.com")
    limit = get_settings().login_max_failures_account
    for _ in range(limit):
        assert (
            await client.post("/api/v1/auth/forgot", json={"email": "ada@example.com"})
        ).status_code == 202
    locked = await client.post("/api/v1/auth/forgot", json={"email": "ada@example.com"})
    assert locked.status_code == 429
    assert "password-reset requests" in locked.json()["detail"]
    assert len(await outbox(kind="reset_password")) == limit

    for _ in range(limit):
        await client.post("/api/v1/auth/verify/resend", json={"email": "new@example.com"})
    limited = await client.post("/api/v1/auth/verify/resend", json={"email": "new@example.com"})
    assert limited.status_code == 429
