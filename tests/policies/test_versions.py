"""Versioned policy documents: publishing (material or minor), the pages of every version, the
e-mail and banner of a material change, and the acceptance gate at the next sign-in."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.policy import PolicyAcceptance
from connectx.web.policy import POLICY_FILE
from tests.retention.support import events, run_cli
from tests.support.factories import make_user, signed_in
from tests.workspaces.helpers import new_client

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _new_policy(tmp_path: Path, date: str, extra: str, name: str = "policy.txt") -> Path:
    lines = POLICY_FILE.read_text(encoding="utf-8").splitlines()
    assert lines[1].startswith("Last Updated:")
    lines[1] = f"Last Updated: {date}"
    body = "\n".join(lines).replace(
        "9. Controls for Do-Not-Track Features", f"{extra}\n9. Controls for Do-Not-Track Features"
    )
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


async def test_a_minor_version_is_served_and_the_earlier_one_kept(
    client: Any, tmp_path: Path
) -> None:
    before = await client.get("/privacy", headers=BROWSER)
    assert before.status_code == 200 and "August 2, 2025" in before.text
    assert "Global Privacy Control" in before.text and "Do-Not-Track" in before.text

    minor = _new_policy(tmp_path, "March 1, 2026", "We fixed a typo in section 8.")
    result = await run_cli("policy", "publish", str(minor), "--minor")
    assert result.exit_code == 0, result.output
    assert "minor change" in result.output

    page = await client.get("/privacy", headers=BROWSER)
    assert 'datetime="2026-03-01"' in page.text and "We fixed a typo" in page.text
    assert "archived-version" not in page.text
    old = await client.get("/privacy/versions/2025-08-02", headers=BROWSER)
    assert old.status_code == 200 and 'datetime="2025-08-02"' in old.text
    assert "This is an earlier version" in old.text and "We fixed a typo" not in old.text
    listing = await client.get("/privacy/versions", headers=BROWSER)
    assert listing.text.index("March 1, 2026") < listing.text.index("August 2, 2025")
    assert "minor" in listing.text
    missing = await client.get("/privacy/versions/2024-01-01", headers=BROWSER)
    assert missing.status_code == 404 and "/privacy/versions" in missing.text
    api = (await client.get("/api/v1/policies/privacy/versions")).json()
    assert [v["last_updated"] for v in api] == ["2026-03-01", "2025-08-02"]
    assert [e.data["material"] for e in await events("policy.published")] == [False]
    # A minor change e-mails nobody.
    await make_user(email="quiet@example.com")
    assert await events("policy.notified") == []


async def test_publishing_refuses_bad_documents(client: Any, tmp_path: Path) -> None:
    older = _new_policy(tmp_path, "July 1, 2025", "Older.")
    result = await run_cli("policy", "publish", str(older), "--minor")
    assert result.exit_code == 1 and 'later "Last Updated" date' in result.output
    broken = tmp_path / "broken.txt"
    broken.write_text("Privacy Policy\nUpdated recently\nBody\n")
    result = await run_cli("policy", "publish", str(broken), "--minor")
    assert result.exit_code == 1 and "Last Updated" in result.output
    newer = _new_policy(tmp_path, "May 5, 2026", "New section.")
    result = await run_cli("policy", "publish", str(newer), "--material")
    assert result.exit_code == 1 and "what changed" in result.output
    result = await run_cli("policy", "publish", str(newer), "--minor", "--kind", "cookies")
    assert result.exit_code == 1 and "Unknown document" in result.output
    assert "Traceback" not in result.output
    assert await events("policy.published") == []


async def test_terms_have_their_own_versions(client: Any, tmp_path: Path) -> None:
    terms = await client.get("/terms", headers=BROWSER)
    assert terms.status_code == 200 and "<h1>Terms of Service</h1>" in terms.text
    assert "5. Suspension and Termination" in terms.text
    current = (await client.get("/api/v1/policies")).json()
    assert {v["kind"] for v in current} == {"privacy", "terms"}


async def test_a_material_change_mails_everyone_shows_a_banner_and_gates_sign_in(
    app: Any, tmp_path: Path, smtp_server: Any
) -> None:
    ada = await make_user(email="ada@example.com", name="Ada Lovelace")
    await make_user(email="bob@example.com", name="Bob Marley")
    async with new_client(app) as before_client:
        await signed_in(before_client, "ada@example.com")
        assert (await before_client.get("/account", headers=BROWSER)).status_code == 200

        clock.advance(timedelta(minutes=1))
        material = _new_policy(tmp_path, "April 10, 2026", "We now use a new e-mail provider.")
        result = await run_cli(
            "policy",
            "publish",
            str(material),
            "--material",
            "--summary",
            "We added a new e-mail provider to the list of processors.",
        )
        assert result.exit_code == 0, result.output

        # Every account holder is e-mailed, through the real SMTP peer.
        mail = await smtp_server.wait_for(to="ada@example.com", timeout=15)
        for _ in range(200):
            if smtp_server.to("bob@example.com"):
                break
            await asyncio.sleep(0.05)
        assert smtp_server.to("bob@example.com")
        assert mail["Subject"] == "We have updated our Privacy Policy"
        body = mail.get_body(preferencelist=("plain",)).get_content()
        assert "April 10, 2026" in body and "new e-mail provider" in body
        assert "http://testserver/privacy" in body

        # Signed-in pages now ask for acceptance first (the session from before, too).
        gated = await before_client.get("/account", headers=BROWSER)
        assert gated.status_code == 303
        assert gated.headers["location"] == "/policies/accept?next=%2Faccount"
        # The policy itself, the accept page and the API stay open.
        assert (await before_client.get("/privacy", headers=BROWSER)).status_code == 200
        assert (await before_client.get("/api/v1/me")).status_code == 200
        due = (await before_client.get("/api/v1/account/policies")).json()
        assert [v["last_updated"] for v in due] == ["2026-04-10"]

    # The next sign-in lands on the accept page.
    async with new_client(app) as c:
        csrf = await signed_in(c, "ada@example.com")
        landing = await c.get("/workspace", headers=BROWSER)
        assert landing.status_code == 303 and landing.headers["location"].startswith(
            "/policies/accept"
        )
        page = await c.get(landing.headers["location"], headers=BROWSER)
        assert page.status_code == 200
        assert "We added a new e-mail provider" in page.text
        assert "policy-change-banner" in page.text  # the in-app banner
        refused = await c.post("/policies/accept", data={"csrf_token": csrf, "next": "/workspace"})
        assert refused.status_code == 422 and "Tick the box" in refused.text
        done = await c.post(
            "/policies/accept", data={"csrf_token": csrf, "next": "/workspace", "agree": "yes"}
        )
        assert done.status_code == 303 and done.headers["location"] == "/workspace"
        assert (await c.get("/account", headers=BROWSER)).status_code == 200
        assert (await c.get("/api/v1/account/policies")).json() == []

    [accepted] = await events("policy.accepted")
    assert accepted.subject == f"user:{ada.id}" and accepted.data["kind"] == "privacy"
    async with unit_of_work() as db:
        rows = (await db.execute(select(PolicyAcceptance))).scalars().all()
        assert [(r.user_id, r.ip_truncated) for r in rows] == [(ada.id, "127.0.0.0/24")]
        # Acceptances are append-only.
        with pytest.raises(Exception, match="append-only"):
            async with db.begin_nested():
                await db.execute(text("DELETE FROM policy_acceptances"))

    # Someone who signs up after the change agreed to it by signing up: no gate.
    newcomer = await make_user(email="new@example.com")
    async with new_client(app) as c:
        await signed_in(c, "new@example.com")
        assert (await c.get("/account", headers=BROWSER)).status_code == 200
    assert newcomer is not None

    # The banner shows for 30 days, then goes.
    async with new_client(app) as anon:
        assert "policy-change-banner" in (await anon.get("/", headers=BROWSER)).text
        clock.advance(timedelta(days=31))
        from connectx.policies import service

        service.forget_cache()
        assert "policy-change-banner" not in (await anon.get("/", headers=BROWSER)).text


async def test_the_documents_in_force_read_without_waiting_for_the_callers_transaction(
    app: Any,
) -> None:
    """``GET /api/v1/policies`` signed in, with nothing cached: the versions are read beside the
    request's own transaction (which holds SQLite's write lock once the session is read), never
    behind it (it waited out the 30 s busy timeout, then answered 500)."""
    from connectx.policies import service

    await make_user(email="reader@example.com")
    client = new_client(app)
    await signed_in(client, "reader@example.com")
    service.forget_cache()
    r = await asyncio.wait_for(client.get("/api/v1/policies"), 10)
    assert r.status_code == 200, r.text
    assert [v["kind"] for v in r.json()] == ["privacy", "terms"]
