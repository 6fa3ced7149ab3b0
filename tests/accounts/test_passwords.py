"""Passwords: Argon2id at or above OWASP's minimum, re-hashed at sign-in when the parameters
change, hashed off the event loop; forgotten passwords by an e-mailed one-time link (no hints)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from argon2 import extract_parameters
from sqlalchemy import select

from connectx.config import reset_settings
from connectx.db.session import unit_of_work
from connectx.kit import clock, passwords
from connectx.models.account import User
from connectx.models.audit import AuditEvent
from tests.accounts.support import BROWSER, mailed_link, submit, token_of
from tests.support.factories import DEFAULT_PASSWORD, make_user, signed_in
from tests.support.mail import outbox

NEW_PASSWORD = "amber-window-seventy-two"


async def _hash_of(user_id: int) -> str:
    async with unit_of_work() as db:
        user = await db.get(User, user_id)
        assert user is not None
        return user.password_hash


async def test_hash_is_argon2id_at_owasp_minimum_or_above() -> None:
    user = await make_user(email="ada@example.com")
    params = extract_parameters(await _hash_of(user.id))
    assert params.type.name == "ID"
    assert params.memory_cost >= 19 * 1024
    assert params.time_cost >= 2
    assert params.parallelism >= 1


async def test_settings_below_the_minimum_are_raised_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTX_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("CONNECTX_ARGON2_TIME_COST", "1")
    reset_settings()
    try:
        params = extract_parameters(await passwords.hash_password("some long passphrase"))
        assert params.memory_cost == 19 * 1024 and params.time_cost == 2
    finally:
        monkeypatch.undo()
        reset_settings()


async def test_sign_in_rehashes_when_the_parameters_changed(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(email="ada@example.com")
    before = await _hash_of(user.id)
    assert extract_parameters(before).time_cost == 2
    monkeypatch.setenv("CONNECTX_ARGON2_TIME_COST", "3")
    reset_settings()
    try:
        await signed_in(client, "ada@example.com")
        after = await _hash_of(user.id)
        assert after != before
        assert extract_parameters(after).time_cost == 3
        # Unchanged parameters: no new hash on the next sign-in.
        await signed_in(client, "ada@example.com")
        assert await _hash_of(user.id) == after
    finally:
        monkeypatch.undo()
        reset_settings()
    # The password still works under the old parameters' settings (verification reads the hash).
    await signed_in(client, "ada@example.com")


async def test_hashing_does_not_block_the_event_loop() -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = ticks
    for _ in range(3):
        await passwords.hash_password("a long enough passphrase")
    during = ticks - start
    stop.set()
    await task
    assert during >= 10, f"the loop ran only {during} times while hashing"


async def test_forgot_password_mails_a_one_hour_single_use_link_that_signs_out_everywhere(
    client,
) -> None:
    user = await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    assert (await client.get("/api/v1/account/profile")).status_code == 200

    asked = await client.post("/api/v1/auth/forgot", json={"email": "ADA@example.com"})
    assert asked.status_code == 202
    link = await mailed_link("ada@example.com", "reset_password")
    assert link.startswith("http://testserver/reset?token=")
    [message] = await outbox(kind="reset_password")
    assert "1 hour" in message.body and DEFAULT_PASSWORD not in message.body

    page = await client.get(link.removeprefix("http://testserver"), headers=BROWSER)
    assert page.status_code == 200 and 'name="password"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"

    weak = await client.post(
        "/api/v1/auth/reset", json={"token": token_of(link), "password": "password1234"}
    )
    assert weak.status_code == 422  # the link still works after a refused password
    done = await client.post(
        "/api/v1/auth/reset", json={"token": token_of(link), "password": NEW_PASSWORD}
    )
    assert done.status_code == 200, done.text
    assert (await client.get("/api/v1/account/profile")).status_code == 401  # signed out

    again = await client.post(
        "/api/v1/auth/reset", json={"token": token_of(link), "password": "another-fine-phrase"}
    )
    assert again.status_code == 410
    old = await client.post(
        "/api/v1/auth/signin", json={"email": "ada@example.com", "password": DEFAULT_PASSWORD}
    )
    assert old.status_code == 401
    await signed_in(client, "ada@example.com", NEW_PASSWORD)
    async with unit_of_work() as db:
        actions = [e.action for e in (await db.execute(select(AuditEvent))).scalars()]
    assert "account.password_reset" in actions
    assert user.id


async def test_reset_link_expires_after_an_hour(client) -> None:
    await make_user(email="ada@example.com")
    await client.post("/api/v1/auth/forgot", json={"email": "ada@example.com"})
    token = token_of(await mailed_link("ada@example.com", "reset_password"))
    clock.advance(timedelta(hours=1, seconds=1))
    late = await client.post("/api/v1/auth/reset", json={"token": token, "password": NEW_PASSWORD})
    assert late.status_code == 410
    assert "expired" in late.json()["detail"]
    page = await client.get(f"/reset?token={token}", headers=BROWSER)
    assert page.status_code == 410 and "Ask for a new link" in page.text


async def test_forgot_says_the_same_for_unknown_addresses_and_sends_nothing(client) -> None:
    await make_user(email="ada@example.com")
    known = await client.post("/api/v1/auth/forgot", json={"email": "ada@example.com"})
    unknown = await client.post("/api/v1/auth/forgot", json={"email": "eve@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert await outbox(to="eve@example.com") == []
    page = await submit(client, "/forgot", "/forgot", {"email": "eve@example.com"})
    assert page.status_code == 200 and "If an account uses that address" in page.text


async def test_reset_through_the_pages(client) -> None:
    await make_user(email="ada@example.com")
    await submit(client, "/forgot", "/forgot", {"email": "ada@example.com"})
    link = (await mailed_link("ada@example.com", "reset_password")).removeprefix(
        "http://testserver"
    )
    done = await submit(client, link, "/reset", {"token": token_of(link), "password": NEW_PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/signin"
    await signed_in(client, "ada@example.com", NEW_PASSWORD)


async def test_change_password_needs_the_current_one_and_signs_out_other_sessions(app) -> None:
    import httpx

    await make_user(email="ada@example.com")
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as laptop,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as phone,
    ):
        await signed_in(phone, "ada@example.com")
        csrf = await signed_in(laptop, "ada@example.com")
        wrong = await laptop.post(
            "/api/v1/account/password",
            json={"current_password": "not-my-password-at-all", "new_password": NEW_PASSWORD},
            headers={"X-CSRF-Token": csrf},
        )
        assert wrong.status_code == 401
        assert "current password is not right" in wrong.json()["detail"]
        changed = await laptop.post(
            "/api/v1/account/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers={"X-CSRF-Token": csrf},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["other_sessions_signed_out"] == 1
        assert (await phone.get("/api/v1/account/profile")).status_code == 401
        assert (await laptop.get("/api/v1/account/profile")).status_code == 200
