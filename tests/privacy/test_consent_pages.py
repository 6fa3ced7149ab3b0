"""Withdrawal in the product: an account holder on the account page (and the API), an agent on a
contact (the agent is the actor); the workspace's keywords on the settings page."""

from __future__ import annotations

from typing import Any

from connectx.contacts.service import Contacts
from connectx.db.session import unit_of_work
from connectx.integrations.whatsapp.schemas import Identity
from connectx.privacy import consent
from tests.workspaces.helpers import api_key, bearer, join, owner_of, person
from tests.workspaces.test_pages import page, submit


async def _history(subject: str) -> list[tuple[str, bool, str, str]]:
    async with unit_of_work() as db:
        rows = await consent.history(db, subject)
    return [(r.purpose, r.granted, r.source, r.actor) for r in rows]


async def a_contact(workspace_id: int, phone: str = "+971501234567") -> int:
    """A contact as a first WhatsApp message creates one."""
    async with unit_of_work() as db:
        found = await Contacts(db).resolve(workspace_id, Identity(phone=phone))
        assert found is not None
        return found.id


async def test_account_holder_unsubscribes_from_the_account_page(app: Any) -> None:
    ada = await person(app)
    me = f"user:{ada.user.id}"
    html = await page(ada, "/account")
    assert 'hx-get="/account/email-preferences"' in html  # the section loads into the page
    assert 'href="/account/email-preferences"' in html  # and works without JavaScript
    html = await page(ada, "/account/email-preferences")
    assert html.count("Not subscribed.") == 2 and "Subscribe to news and offers" in html

    await submit(ada, "/account/email-preferences", {"purpose": "marketing", "granted": "yes"})
    fragment = (
        await ada.client.get("/account/email-preferences", headers={"HX-Request": "true"})
    ).text
    assert "<html" not in fragment and "Unsubscribe from news and offers" in fragment
    r = await submit(ada, "/account/email-preferences", {"purpose": "marketing", "granted": "no"})
    assert r.headers["location"] == "/account#email-preferences"
    assert "Unsubscribed from news and offers e-mails." in await page(ada, "/account")
    assert await _history(me) == [
        ("marketing", False, "signup_form", me),  # the sign-up form's unticked box
        ("marketing", True, "account_settings", me),
        ("marketing", False, "account_settings", me),
    ]
    r = await submit(
        ada, "/account/email-preferences", {"purpose": "analytics", "granted": "no"}, status=422
    )
    assert "marketing, product_updates" in r.text

    # the same through the API (a session: CSRF header)
    r = await ada.post(
        "/api/v1/account/consent", json={"purpose": "product_updates", "granted": True}
    )
    assert r.status_code == 200 and r.json()["granted"] and r.json()["source"] == "account_settings"
    r = await ada.get("/api/v1/account/consent")
    assert [(s["purpose"], s["granted"]) for s in r.json()] == [
        ("marketing", False),
        ("product_updates", True),
    ]
    r = await ada.client.post(
        "/api/v1/account/consent", json={"purpose": "marketing", "granted": 1}
    )
    assert r.status_code == 403  # no CSRF token: nothing recorded
    assert len(await _history(me)) == 4


async def test_agent_withdraws_for_a_contact_and_is_the_actor(app: Any) -> None:
    owner, ws = await owner_of(app)
    agent = await join(app, owner, "agent")
    contact = await a_contact(ws)
    r = await agent.post(
        f"/api/v1/contacts/{contact}/consent",
        json={"purpose": "marketing", "channel": "whatsapp", "granted": False},
    )
    assert r.status_code == 201, r.text
    assert r.json()["granted"] is False and r.json()["source"] == "agent"
    key = await api_key(owner, ["write"])
    r = await owner.client.post(
        f"/api/v1/contacts/{contact}/consent",
        json={"purpose": "analytics", "channel": "whatsapp", "granted": False},
        headers=bearer(key["key"]),
    )
    assert r.status_code == 201 and r.json()["source"] == "api"
    assert await _history(f"contact:{contact}") == [
        ("marketing", False, "agent", f"user:{agent.user.id}"),
        ("analytics", False, "api", f"api_key:{key['id']}"),
    ]
    for bad, words in (
        ({"purpose": "spam", "channel": "whatsapp", "granted": False}, "purpose"),
        ({"purpose": "marketing", "channel": "fax", "granted": False}, "channel"),
        ({"purpose": "marketing", "granted": "maybe"}, "granted"),
    ):
        r = await agent.post(f"/api/v1/contacts/{contact}/consent", json=bad)
        assert r.status_code == 422 and words in r.text, r.text
    r = await agent.post(
        f"/api/v1/contacts/{contact + 99}/consent",
        json={"purpose": "marketing", "channel": "whatsapp", "granted": False},
    )
    assert r.status_code == 404
    r = await agent.get(f"/api/v1/contacts/{contact}/consent")
    assert r.status_code == 200 and len(r.json()["history"]) == 2
    marketing = next(
        s for s in r.json()["states"] if (s["purpose"], s["channel"]) == ("marketing", "whatsapp")
    )
    assert marketing["decided"] and not marketing["granted"]


async def test_keywords_section_of_the_settings_page(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    html = await page(owner, "/workspace/settings")
    assert 'hx-get="/workspace/consent-keywords"' in html
    html = await page(owner, "/workspace/consent-keywords")
    assert "(default)" in html and 'value="STOP"' in html
    form = {
        "language": "ar",
        "stop": "توقف، إلغاء, الغاء",
        "start": "ابدأ",
        "stop_reply": "تم إيقاف الرسائل التسويقية.",
        "start_reply": "ستصلك رسائلنا مجدداً.",
    }
    r = await submit(owner, "/workspace/consent-keywords", {**form, "start": "STOP"}, status=422)
    assert "must mean one thing" in r.text and 'value="ar"' in r.text  # kept what was typed
    r = await submit(owner, "/workspace/consent-keywords", form)
    assert r.headers["location"] == "/workspace/settings#keywords"
    sets = (await owner.get("/api/v1/workspace/consent/keywords")).json()["languages"]
    assert [s["language"] for s in sets] == ["en", "ar"]
    assert sets[1]["stop"] == ["توقف، إلغاء", "الغاء"]
    html = await page(agent, "/workspace/consent-keywords")  # agents see, do not change
    assert "Add a language" not in html and "ستصلك رسائلنا مجدداً." in html
    await submit(agent, "/workspace/consent-keywords", {**form, "language": "fr"}, status=403)
    await submit(owner, "/workspace/consent-keywords", {"language": "ar", "remove": "yes"})
    sets = (await owner.get("/api/v1/workspace/consent/keywords")).json()["languages"]
    assert [s["language"] for s in sets] == ["en"]
