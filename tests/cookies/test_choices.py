"""The cookie banner over HTTP: nothing optional before a choice, the choice in the consent
ledger, withdrawal deletes, Global Privacy Control overrides, preferences really apply."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.consent import ConsentRecord
from tests.support.factories import make_user, signed_in
from tests.workspaces.helpers import new_client

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
GPC = {**BROWSER, "Sec-GPC": "1"}
OPTIONAL = ("cx_aid", "cx_prefs")


def _set_cookies(response: Any) -> dict[str, str]:
    """name -> the Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def _banner_token(html: str) -> str:
    banner = html[html.index('id="cookie-banner"') :]
    return re.search(r'name="csrf_token" value="([^"]+)"', banner).group(1)  # type: ignore[union-attr]


async def _ledger() -> list[ConsentRecord]:
    async with unit_of_work() as db:
        stmt = select(ConsentRecord).where(ConsentRecord.channel == "web")
        return list((await db.execute(stmt.order_by(ConsentRecord.id))).scalars())


async def test_nothing_optional_before_a_choice_then_the_choice_applies(app: Any) -> None:
    async with new_client(app) as c:
        first = await c.get("/", headers=BROWSER)
        assert 'id="cookie-banner"' in first.text
        assert set(_set_cookies(first)) <= {"cx_csrf"}  # strictly necessary only
        # A stale analytics id the browser still holds is neither used nor kept.
        c.cookies.set("cx_aid", "old-id-from-somewhere")
        again = await c.get("/privacy", headers=BROWSER)
        assert "Max-Age=0" in _set_cookies(again)["cx_aid"]
        c.cookies.delete("cx_aid")

        token = _banner_token(again.text)
        chosen = await c.post(
            "/cookies", data={"choice": "all", "csrf_token": token, "next": "/privacy"}
        )
        assert chosen.status_code == 303 and chosen.headers["location"] == "/privacy"
        consent_cookie = _set_cookies(chosen)["cx_consent"]
        assert "HttpOnly" in consent_cookie and "SameSite=Lax" in consent_cookie
        visitor = re.search(r"cx_consent=1\.([A-Za-z0-9_-]+)\.11", consent_cookie).group(1)  # type: ignore[union-attr]

        after = await c.get("/", headers=BROWSER)
        assert 'id="cookie-banner"' not in after.text
        assert "cx_aid" in _set_cookies(after)  # analytics now allowed
        records = await _ledger()
        assert [(r.subject, r.purpose, r.granted, r.source) for r in records] == [
            (f"visitor:{visitor}", "preferences", True, "cookie_banner"),
            (f"visitor:{visitor}", "analytics", True, "cookie_banner"),
        ]
        assert all(r.notice_version == "2025-08-02" and r.wording for r in records)

        # Changed from the settings page (linked in every footer): analytics off.
        assert 'href="/cookies"' in after.text
        settings = await c.get("/cookies", headers=BROWSER)
        assert 'id="cookie-analytics" name="analytics" value="yes" role="switch" checked' in (
            settings.text
        )
        token = re.search(r'name="csrf_token" value="([^"]+)"', settings.text).group(1)  # type: ignore[union-attr]
        changed = await c.post(
            "/cookies",
            data={"choice": "custom", "preferences": "yes", "csrf_token": token, "next": "/"},
        )
        assert changed.status_code == 303
        assert "Max-Age=0" in _set_cookies(changed)["cx_aid"]  # deleted at once
        assert re.search(r"cx_consent=1\.[A-Za-z0-9_-]+\.10", _set_cookies(changed)["cx_consent"])
        later = await c.get("/", headers=BROWSER)
        assert "cx_aid" not in _set_cookies(later)
        records = await _ledger()
        assert [(r.purpose, r.granted) for r in records[2:]] == [
            ("preferences", True),
            ("analytics", False),
        ]
        assert {r.subject for r in records} == {f"visitor:{visitor}"}  # the same visitor

        # Preferences apply: a theme is remembered and used.
        themed = await c.post("/cookies/theme", data={"theme": "dark", "csrf_token": token})
        assert themed.status_code == 303 and "cx_prefs=dark" in _set_cookies(themed)["cx_prefs"]
        assert '<html lang="en" data-theme="dark">' in (await c.get("/", headers=BROWSER)).text


async def test_global_privacy_control_means_no_optional_cookies(app: Any) -> None:
    async with new_client(app) as c:
        page = await c.get("/", headers=GPC)
        assert 'id="cookie-banner"' not in page.text  # nothing to ask
        assert not set(_set_cookies(page)) & set(OPTIONAL)
        policy = await c.get("/privacy", headers=GPC)
        assert 'id="gpc-detected"' in policy.text
        settings = await c.get("/cookies", headers=GPC)
        assert 'id="gpc-note"' in settings.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', settings.text).group(1)  # type: ignore[union-attr]
        # Even "allow all" records a refusal while GPC is on.
        chosen = await c.post(
            "/cookies", data={"choice": "all", "csrf_token": token, "next": "/"}, headers=GPC
        )
        assert chosen.status_code == 303
        assert re.search(r"cx_consent=1\.[A-Za-z0-9_-]+\.00", _set_cookies(chosen)["cx_consent"])
        assert [r.granted for r in await _ledger()] == [False, False]
        assert "Global Privacy Control" in (await c.get("/", headers=GPC)).text  # the flash
        refused = await c.post("/cookies/theme", data={"theme": "dark", "csrf_token": token})
        assert refused.status_code == 409

    # A browser that allowed everything, then turns GPC on: optional cookies go.
    async with new_client(app) as c:
        first = await c.get("/", headers=BROWSER)
        await c.post(
            "/cookies", data={"choice": "all", "csrf_token": _banner_token(first.text), "next": "/"}
        )
        assert "cx_aid" in _set_cookies(await c.get("/", headers=BROWSER))
        with_gpc = await c.get("/", headers=GPC)
        assert "Max-Age=0" in _set_cookies(with_gpc)["cx_aid"]


async def test_a_signed_in_persons_choice_is_recorded_under_their_account(app: Any) -> None:
    user = await make_user(email="cora@example.com")
    async with new_client(app) as c:
        csrf = await signed_in(c, "cora@example.com")
        page = await c.get("/account", headers=BROWSER)
        assert _banner_token(page.text) == csrf  # the session's token
        r = await c.post("/cookies", data={"choice": "necessary", "csrf_token": csrf, "next": "/"})
        assert r.status_code == 303
    records = await _ledger()
    assert [(r.subject, r.purpose, r.granted) for r in records] == [
        (f"user:{user.id}", "preferences", False),
        (f"user:{user.id}", "analytics", False),
    ]


async def test_the_choice_needs_the_forms_token(app: Any) -> None:
    async with new_client(app) as c:
        await c.get("/", headers=BROWSER)
        r = await c.post("/cookies", data={"choice": "all", "csrf_token": "forged", "next": "/"})
        assert r.status_code == 403
        r = await c.post("/cookies", data={"choice": "everything", "next": "/"})
        assert r.status_code in (403, 422)
    assert await _ledger() == []


async def test_choosing_on_the_sign_in_page_goes_back_to_it(app: Any) -> None:
    """The banner sends the page it was on as ``next``; on the sign-in page (with its own
    ``next``) the choice brings the person back there, not to the home page."""
    async with new_client(app) as c:
        page = await c.get("/signin?next=%2Finbox", headers=BROWSER)
        banner = page.text[page.text.index('id="cookie-banner"') :]
        back = re.search(r'name="next" value="([^"]+)"', banner).group(1)  # type: ignore[union-attr]
        assert back.replace("&amp;", "&") in ("/signin?next=%2Finbox", "/signin?next=/inbox")
        chosen = await c.post(
            "/cookies",
            data={"choice": "necessary", "csrf_token": _banner_token(page.text), "next": back},
        )
        assert chosen.status_code == 303
        assert chosen.headers["location"].replace("&amp;", "&") == back.replace("&amp;", "&")
        settings = await c.get("/cookies?next=%2Fsignin", headers=BROWSER)
        assert 'name="next" value="/signin"' in settings.text
        # Sign-out is still never a place to go back to.
        out = await c.post(
            "/cookies",
            data={"choice": "all", "csrf_token": _banner_token(page.text), "next": "/signout"},
        )
        assert out.headers["location"] == "/"
