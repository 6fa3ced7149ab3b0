"""The web shell over HTTP: the landing page, the privacy policy page, the layout's assets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import connectx.web
from tests.web.html import parse

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
POLICY = Path(connectx.web.__file__).parent / "content" / "privacy-policy.txt"


async def test_landing_page_explains_and_offers_sign_in_and_sign_up(client: Any) -> None:
    resp = await client.get("/", headers=BROWSER)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    page = parse(resp.text)
    assert "WhatsApp" in page.find("h1").text + page.find("p", **{"class": "lead"}).text
    hrefs = {a.attrs.get("href") for a in page.find_all("a")}
    assert {"/signup", "/signin", "/privacy"} <= hrefs
    assert "/workspace" not in hrefs  # nothing for signed-in people when nobody is signed in
    assert "Go to your workspace" not in resp.text


async def test_privacy_page_renders_the_policy_with_structure(client: Any) -> None:
    resp = await client.get("/privacy", headers=BROWSER)
    assert resp.status_code == 200
    page = parse(resp.text)
    lines = [ln.strip() for ln in POLICY.read_text().splitlines() if ln.strip()]

    assert page.find("h1").text == lines[0] == "Privacy Policy"
    stamp = page.find("time")
    assert stamp.attrs["datetime"] == "2025-08-02"
    assert f"Last Updated: {stamp.text}" == lines[1]

    headings = [h.text for h in page.find_all("h2") + page.find_all("h3")]
    numbered = [ln for ln in lines if re.match(r"^\d+(\.\d+)?\.?\s", ln)]
    assert len(numbered) == 13
    for heading in numbered:
        assert heading in headings, heading

    items = [li.text for li in page.find("article", **{"class": "policy-body"}).find_all("li")]
    bullets = [ln[2:] for ln in lines if ln.startswith("- ")]
    assert bullets and all(b in items for b in bullets)
    assert page.find_all("strong")  # "Label:" lead-ins are bold
    paragraphs = " ".join(p.text for p in page.find_all("p"))
    for line in lines[2:]:
        if not line.startswith("- ") and line not in numbered and len(line) > 80:
            assert line in paragraphs, line

    toc = page.find("nav", **{"aria-label": "Contents"})
    assert len(toc.find_all("li")) == 11
    for link in toc.find_all("a"):
        assert page.find_all("h2", id=link.attrs["href"].lstrip("#")), link.attrs["href"]


async def test_privacy_page_gives_the_dpo_contact(client: Any) -> None:
    page = parse((await client.get("/privacy", headers=BROWSER)).text)
    card = page.find("aside", **{"class": "dpo-card"})
    assert "Data Protection Officer" in card.text
    assert card.find("a", href="mailto:support@connectxsaudi.com").text == (
        "support@connectxsaudi.com"
    )
    assert card.find("address").text == (
        "ConnectX Dubai Digital Park, Dubai Silicon Oasis Dubai, United Arab Emirates "
        "P.O. Box 341041"
    )
    section_11 = page.find("h2", id="section-11").text
    assert section_11 == "11. How Can You Contact Us About This Policy?"


async def test_pages_load_only_our_own_scripts_and_styles(client: Any) -> None:
    """CSP forbids inline scripts: every script has a src, no element has an on* handler, and
    every asset the layout names is served."""
    for path in ("/", "/privacy"):
        resp = await client.get(path, headers=BROWSER)
        page = parse(resp.text)
        scripts = page.find_all("script")
        assert [s.attrs.get("src") for s in scripts] == [
            "/static/js/app.js",
            "/static/vendor/htmx.min.js",
            "/static/vendor/alpine.min.js",
        ]
        assert all(not s.text.strip() for s in scripts)
        assert not re.search(r"\son[a-z]+\s*=", resp.text)
        assets = [s.attrs["src"] for s in scripts]
        assets += [link.attrs["href"] for link in page.find_all("link")]
        for asset in assets:
            got = await client.get(asset)
            assert got.status_code == 200, asset
            assert got.content, asset
    assert "script-src 'self'" in resp.headers["content-security-policy"]


async def test_alpine_components_are_registered_in_app_js(client: Any) -> None:
    """Components named in templates must be registered by static/js/app.js (CSP build)."""
    js = (await client.get("/static/js/app.js")).text
    registered = set(re.findall(r'Alpine\.data\("([A-Za-z]+)"', js))
    assert {"dismissible", "copyable", "confirmSubmit", "reveal"} <= registered
    templates = Path(connectx.web.__file__).parents[1].glob("*/templates/**/*.html")
    for template in templates:
        for name in re.findall(r'x-data="([A-Za-z_][A-Za-z0-9_]*)"', template.read_text()):
            assert name in registered, f"{template.name}: x-data={name!r} is not registered"


async def test_signed_in_landing_offers_the_workspace_and_sign_out(client: Any) -> None:
    from tests.support.factories import make_user, signed_in

    await make_user(email="lina@example.com")
    csrf_token = await signed_in(client, "lina@example.com")
    page = parse((await client.get("/", headers=BROWSER)).text)
    main = page.find("main")
    assert [a.text for a in main.find_all("a", href="/workspace")] == ["Go to your workspace"]
    assert not main.find_all("a", href="/signup")
    # The layout carries the session's CSRF token for forms and htmx, and a sign-out form.
    assert page.find("meta", name="csrf-token").attrs["content"] == csrf_token
    assert csrf_token in page.find("body").attrs["hx-headers"]
    signout = page.find("form", action="/signout")
    assert signout.find("input", name="csrf_token").attrs["value"] == csrf_token
    # The privacy page is the same for everyone, with the signed-in navigation.
    privacy = parse((await client.get("/privacy", headers=BROWSER)).text)
    assert privacy.find("a", href="/account").text == "Account"


@pytest.mark.parametrize("path", ["/workspace", "/workspace/members", "/account"])
async def test_real_pages_redirect_anonymous_browsers_to_sign_in(client: Any, path: str) -> None:
    resp = await client.get(path, headers=BROWSER)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/signin?next={path.replace('/', '%2F')}"


async def test_api_reference_uses_npm_assets_without_inline_script(client: Any) -> None:
    resp = await client.get("/docs", headers=BROWSER)
    assert resp.status_code == 200
    page = parse(resp.text)
    scripts = page.find_all("script")
    assert [s.attrs["src"] for s in scripts] == [
        "/static/vendor/swagger-ui-bundle.js",
        "/static/js/api-docs.js",
    ]
    assert all(not s.text.strip() for s in scripts)
    assert page.find("body").attrs["data-openapi-url"] == "/openapi.json"
    for asset in [s.attrs["src"] for s in scripts] + [
        link.attrs["href"] for link in page.find_all("link")
    ]:
        assert (await client.get(asset)).status_code == 200, asset
    assert "cdn." not in resp.text


async def test_a_page_reads_the_session_row_once(app: Any) -> None:
    """A full page view reads its session once: the page gate's statement also gives the role,
    and the page's authentication uses what the gate read (it read the row again before). An
    API call, which the gate does not see, still reads it itself."""
    from sqlalchemy import event

    from connectx.db.engine import get_engine
    from tests.workspaces.helpers import owner_of

    owner, _ = await owner_of(app)
    reads: list[str] = []

    def statement(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        if "FROM user_sessions" in sql and not sql.lstrip().upper().startswith("UPDATE"):
            reads.append(sql)

    engine = get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    try:
        for path in ("/inbox", "/workspace/members"):
            reads.clear()
            r = await owner.get(path, headers=BROWSER)
            assert r.status_code == 200, (path, r.status_code)
            assert len(reads) == 1, (path, reads)
        reads.clear()
        assert (await owner.get("/api/v1/me")).status_code == 200
        assert len(reads) == 1, reads
    finally:
        event.remove(engine, "before_cursor_execute", statement)
