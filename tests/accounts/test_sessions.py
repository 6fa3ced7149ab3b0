"""Sessions: server-side and revocable, a new token at every sign-in, cookie attributes, idle and
absolute timeouts, sign out, sign out everywhere, the sessions list."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from connectx.config import get_settings, reset_settings
from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.kit.crypto import token_hash
from connectx.models.account import UserSession
from tests.accounts.support import BROWSER, FIREFOX, csrf_from
from tests.support.factories import DEFAULT_PASSWORD, make_user, signed_in


async def _signin(client, email: str, password: str = DEFAULT_PASSWORD, **kw) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/signin", json={"email": email, "password": password}, **kw
    )


async def test_cookie_is_httponly_lax_and_only_its_hash_is_stored(client) -> None:
    await make_user(email="ada@example.com")
    response = await _signin(client, "ada@example.com")
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("cx_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # http://testserver
    raw = client.cookies["cx_session"]
    async with unit_of_work() as db:
        [row] = list((await db.execute(select(UserSession))).scalars())
    assert row.token_hash == token_hash(raw)
    assert raw.encode() not in row.token_hash
    assert raw not in response.text


async def test_cookie_is_secure_when_the_site_is_https(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(email="ada@example.com")
    monkeypatch.setenv("CONNECTX_PUBLIC_URL", "https://connectx.example")
    reset_settings()
    try:
        assert get_settings().secure_cookies
        response = await _signin(client, "ada@example.com")
        assert "Secure" in response.headers["set-cookie"]
    finally:
        monkeypatch.setenv("CONNECTX_PUBLIC_URL", "http://testserver")
        reset_settings()


async def _with_cookie(app, raw: str, path: str) -> httpx.Response:
    """A request from another client that presents ``raw`` as its session cookie."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        cookies={"cx_session": raw},
    ) as other:
        return await other.get(path)


async def test_every_sign_in_issues_a_new_token_and_ends_the_presented_one(app, client) -> None:
    await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    first = client.cookies["cx_session"]
    await signed_in(client, "ada@example.com")
    second = client.cookies["cx_session"]
    assert first != second
    assert (await _with_cookie(app, first, "/api/v1/account/profile")).status_code == 401
    assert (await client.get("/api/v1/account/profile")).status_code == 200


async def test_idle_timeout(client) -> None:
    await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    clock.advance(idle - timedelta(minutes=1))
    assert (await client.get("/api/v1/account/profile")).status_code == 200  # touches it
    clock.advance(idle - timedelta(minutes=1))
    assert (await client.get("/api/v1/account/profile")).status_code == 200
    clock.advance(idle + timedelta(seconds=1))
    expired = await client.get("/api/v1/account/profile")
    assert expired.status_code == 401
    assert "Sign in" in expired.json()["detail"]


async def test_absolute_timeout_even_when_active(client) -> None:
    await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    settings = get_settings()
    step = timedelta(minutes=settings.session_idle_minutes - 5)
    absolute = timedelta(hours=settings.session_absolute_hours)
    elapsed = timedelta(0)
    while elapsed + step < absolute:
        clock.advance(step)
        elapsed += step
        assert (await client.get("/api/v1/account/profile")).status_code == 200
    clock.advance(absolute - elapsed + timedelta(seconds=1))
    assert (await client.get("/api/v1/account/profile")).status_code == 401


async def test_sign_out_ends_the_session_server_side(app, client) -> None:
    await make_user(email="ada@example.com")
    csrf = await signed_in(client, "ada@example.com")
    raw = client.cookies["cx_session"]
    out = await client.post("/api/v1/auth/signout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert 'cx_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    # Even a client that kept the cookie is out.
    assert (await _with_cookie(app, raw, "/api/v1/account/profile")).status_code == 401


async def test_sign_out_everywhere_ends_all_devices(app) -> None:
    await make_user(email="ada@example.com")
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as laptop,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as phone,
    ):
        await signed_in(phone, "ada@example.com")
        csrf = await signed_in(laptop, "ada@example.com")
        assert (await phone.get("/api/v1/account/profile")).status_code == 200
        out = await laptop.post("/api/v1/auth/signout-everywhere", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert (await phone.get("/api/v1/account/profile")).status_code == 401
        assert (await laptop.get("/api/v1/account/profile")).status_code == 401


async def test_list_sessions_shows_device_and_truncated_ip_and_revokes_one(app) -> None:
    await make_user(email="ada@example.com")
    transport = httpx.ASGITransport(app=app, client=("203.0.113.77", 5000))
    async with (
        httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"user-agent": FIREFOX}
        ) as laptop,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as other,
    ):
        await signed_in(other, "ada@example.com")
        csrf = await signed_in(laptop, "ada@example.com")
        listed = await laptop.get("/api/v1/account/sessions")
        assert listed.status_code == 200
        rows = listed.json()
        assert len(rows) == 2
        mine = next(r for r in rows if r["current"])
        theirs = next(r for r in rows if not r["current"])
        assert mine["device"] == "Firefox on Linux"
        assert mine["ip"] == "203.0.113.0/24"
        assert "77" not in mine["ip"]

        revoked = await laptop.delete(
            f"/api/v1/account/sessions/{theirs['id']}", headers={"X-CSRF-Token": csrf}
        )
        assert revoked.status_code == 204
        assert (await other.get("/api/v1/account/profile")).status_code == 401
        assert (await laptop.get("/api/v1/account/profile")).status_code == 200
        again = await laptop.delete(
            f"/api/v1/account/sessions/{theirs['id']}", headers={"X-CSRF-Token": csrf}
        )
        assert again.status_code == 404


async def test_someone_elses_session_cannot_be_revoked(app) -> None:
    await make_user(email="ada@example.com")
    await make_user(email="bob@example.com", name="Bob")
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as ada,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as bob,
    ):
        await signed_in(ada, "ada@example.com")
        bob_csrf = await signed_in(bob, "bob@example.com")
        ada_session = (await ada.get("/api/v1/account/sessions")).json()[0]["id"]
        refused = await bob.delete(
            f"/api/v1/account/sessions/{ada_session}", headers={"X-CSRF-Token": bob_csrf}
        )
        assert refused.status_code == 404
        assert (await ada.get("/api/v1/account/profile")).status_code == 200


async def test_account_page_lists_sessions_and_signs_one_out(client) -> None:
    await make_user(email="ada@example.com")
    await signed_in(client, "ada@example.com")
    page = await client.get("/account", headers=BROWSER)
    assert page.status_code == 200
    assert "(this browser)" in page.text
    session_id = (await client.get("/api/v1/account/sessions")).json()[0]["id"]
    out = await client.post(
        f"/account/sessions/{session_id}/revoke",
        data={"csrf_token": csrf_from(page.text)},
        headers=BROWSER,
    )
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert (await client.get("/api/v1/account/profile")).status_code == 401


async def test_signed_out_visitors_of_account_page_go_to_sign_in(client) -> None:
    page = await client.get("/account", headers=BROWSER)
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=%2Faccount"
