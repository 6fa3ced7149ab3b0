"""Sign-in and device records, new-device and new-country alerts over a real SMTP peer, anomalies
flagged to workspace owners."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from connectx.config import reset_settings
from connectx.kit import clock
from tests.retention.support import events
from tests.support.factories import DEFAULT_PASSWORD, make_user, signed_in
from tests.workspaces.helpers import join, new_client, owner_of

PHONE_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)
DESKTOP_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def countries(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CONNECTX_COUNTRY_HEADER", "CF-IPCountry")
    reset_settings()
    yield
    monkeypatch.delenv("CONNECTX_COUNTRY_HEADER")
    reset_settings()


@pytest.fixture
def sensitive(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CONNECTX_SECURITY_FAILED_MAX", "3")
    monkeypatch.setenv("CONNECTX_SECURITY_VELOCITY_MAX", "3")
    reset_settings()
    yield
    monkeypatch.delenv("CONNECTX_SECURITY_FAILED_MAX")
    monkeypatch.delenv("CONNECTX_SECURITY_VELOCITY_MAX")
    reset_settings()


async def _sign_in(client: Any, email: str, **headers: str) -> dict[str, str]:
    r = await client.post(
        "/api/v1/auth/signin", json={"email": email, "password": DEFAULT_PASSWORD}, headers=headers
    )
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


async def test_sign_ins_are_recorded_with_coarse_device_data(app: Any, countries: None) -> None:
    await make_user(email="dana@example.com")
    async with new_client(app) as c:
        r = await c.post(
            "/api/v1/auth/signin",
            json={"email": "dana@example.com", "password": "not-the-password"},
            headers={"User-Agent": DESKTOP_FIREFOX},
        )
        assert r.status_code == 401
        r = await c.post(
            "/api/v1/auth/signin",
            json={"email": "dana@example.com", "password": DEFAULT_PASSWORD},
            headers={"User-Agent": PHONE_CHROME, "CF-IPCountry": "ae"},
        )
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "cx_device=" in cookie and "HttpOnly" in cookie
        [failed, ok] = (await c.get("/api/v1/account/sign-ins")).json()[::-1]
        assert ok["succeeded"] is True and failed["succeeded"] is False
        assert ok["device"] == "Chrome on Android (mobile)"
        assert failed["device"] == "Firefox on Linux (desktop)"
        assert ok["network"] == "127.0.0.0/24" and ok["country"] == "AE"
        assert ok["new_device"] is True  # first sight of this browser (no alert: first sign-in)
        [device] = (await c.get("/api/v1/account/devices")).json()
        assert device["current"] is True and device["countries"] == ["AE"]
        page = await c.get("/account/security")
        assert page.status_code == 200 and "Chrome on Android (mobile)" in page.text
        assert "(this browser)" in page.text and "180 days" in page.text
        account = await c.get("/account")
        assert 'href="/account/security"' in account.text
    recorded = await events("security.sign_in_recorded")
    assert [e.data["new_device"] for e in recorded] == [True]
    assert await events("security.new_sign_in_alerted") == []


async def test_a_new_device_or_country_is_emailed_over_smtp(
    app: Any, smtp_server: Any, countries: None
) -> None:
    await make_user(email="eli@example.com", name="Eli Navarro")
    async with new_client(app) as laptop, new_client(app) as phone:
        await _sign_in(laptop, "eli@example.com", **{"User-Agent": DESKTOP_FIREFOX})
        await _sign_in(laptop, "eli@example.com", **{"User-Agent": DESKTOP_FIREFOX})
        await asyncio.sleep(0.5)
        assert smtp_server.to("eli@example.com") == []  # first sign-in, then a known device

        await _sign_in(phone, "eli@example.com", **{"User-Agent": PHONE_CHROME})
        alert = await smtp_server.wait_for(to="eli@example.com", timeout=15)
        assert alert["Subject"] == "New sign-in to your ConnectX account"
        body = alert.get_body(preferencelist=("plain",)).get_content()
        assert "Hello Eli Navarro" in body and "from a new device" in body
        assert "Chrome on Android (mobile)" in body and "127.0.0.0/24" in body
        assert "127.0.0.1" not in body
        assert "http://testserver/account/security" in body

        await _sign_in(laptop, "eli@example.com", **{"User-Agent": DESKTOP_FIREFOX})
        await _sign_in(
            laptop, "eli@example.com", **{"User-Agent": DESKTOP_FIREFOX, "CF-IPCountry": "AE"}
        )
        for _ in range(300):
            if len(smtp_server.to("eli@example.com")) >= 2:
                break
            await asyncio.sleep(0.05)
        [_, country] = smtp_server.to("eli@example.com")
        text = country.get_body(preferencelist=("plain",)).get_content()
        assert "from a new country" in text and "Country: AE" in text
    assert len(await events("security.new_sign_in_alerted")) == 2


async def test_anomalies_are_flagged_to_the_owners_once_per_window(
    app: Any, sensitive: None
) -> None:
    from tests.support.mail import outbox

    owner, workspace_id = await owner_of(app, "Watchful Ltd", name="Olu Owner")
    agent = await join(app, owner, "agent", name="Ana Agent")
    async with new_client(app) as stranger:
        for n in range(4):
            r = await stranger.post(
                "/api/v1/auth/signin", json={"email": agent.email, "password": f"guess-{n}-x"}
            )
            assert r.status_code == 401
    notices = (await owner.get("/api/v1/workspace/security/notices")).json()
    assert [(n["kind"], n["subject"]) for n in notices] == [
        ("failed_sign_ins", f"user:{agent.user.id}")
    ]
    assert notices[0]["count"] == 3  # flagged at the threshold, not again for the 4th

    # Velocity: three sign-ins within the hour.
    async with new_client(app) as c:
        for _ in range(3):
            await signed_in(c, agent.email)
    kinds = sorted(
        n["kind"] for n in (await owner.get("/api/v1/workspace/security/notices")).json()
    )
    assert kinds == ["failed_sign_ins", "sign_in_velocity"]
    flagged = await events("security.anomaly_flagged")
    assert {e.workspace_id for e in flagged} == {workspace_id}
    assert all(set(e.data) == {"notice_id", "kind", "count", "minutes"} for e in flagged)

    for _ in range(100):
        mails = await outbox(to=owner.email, kind="security_notice")
        if len(mails) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(mails) == 2 and "Security notice for Watchful Ltd" in mails[0].subject
    assert any("many failed sign-in attempts for Ana Agent" in m.body for m in mails)

    page = await owner.get("/workspace/security")
    assert page.status_code == 200 and "Ana Agent" in page.text and "Open" in page.text
    assert (await agent.get("/api/v1/workspace/security/notices")).status_code == 403
    r = await owner.post("/api/v1/workspace/security/notices/resolve")
    assert r.json() == {"resolved": 2}
    assert (await owner.get("/api/v1/workspace/security/notices?open_only=true")).json() == []

    # A new window flags again.
    clock.advance(timedelta(minutes=61))
    async with new_client(app) as c:
        for _ in range(3):
            await signed_in(c, agent.email)
    assert len((await owner.get("/api/v1/workspace/security/notices?open_only=true")).json()) == 1
