"""The workspace admins' page for the WhatsApp privacy keywords (/workspace/requests/keywords):
shown by language, edited, checked with the problem named and the typed rows kept, restored to
the defaults; a saved keyword works in the chat at once; agents cannot change them; audited with
field names only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.audit import AuditEvent
from connectx.models.data_request import RequestDialog
from connectx.privacy.requests import settings
from tests.privacy_requests.support import text_message
from tests.web.html import parse
from tests.whatsapp.support import count, delivered, drain, inbound_for
from tests.workspaces.helpers import Caller, join, owner_of

PAGE = "/workspace/requests/keywords"


def _rows(html: str, section: str) -> list[tuple[str, str]]:
    """(keyword, kind) of the filled rows of a language's section."""
    fieldset = parse(html).find("fieldset", id=f"keywords-{section}")
    out = []
    for row in fieldset.find_all("tr")[1:]:
        text = row.find("input", name="text").attrs.get("value", "")
        chosen = [o for o in row.find_all("option") if "selected" in o.attrs]
        kind = chosen[0].attrs.get("value", "") if chosen else ""
        if text:
            out.append((text, kind))
    return out


async def _save(owner: Caller, rows: list[tuple[str, str]]) -> Any:
    return await owner.post(
        PAGE,
        data={
            "text": [t for t, _ in rows],
            "kind": [k for _, k in rows],
            "csrf_token": owner.csrf,
        },
    )


async def test_admins_see_and_edit_the_keywords_by_language(app: Any) -> None:
    owner, ws = await owner_of(app)
    page = await owner.get(PAGE)
    assert page.status_code == 200, page.text
    assert ("DELETE MY DATA", "erasure") in _rows(page.text, "en")
    assert ("MY DATA", "") in _rows(page.text, "en")
    assert ("احذف بياناتي", "erasure") in _rows(page.text, "ar")
    assert all(not any("\u0600" <= c <= "\u06ff" for c in t) for t, _ in _rows(page.text, "en"))
    tab = await owner.get("/workspace/requests")
    assert parse(tab.text).find("a", id="edit-keywords").attrs["href"] == PAGE

    wanted = [
        ("MY DATA", ""),
        ("DELETE MY DATA", "erasure"),
        ("SHOW MY INFO", "access"),  # new
        ("بياناتي", ""),
        ("بياناتي الشخصية", "access"),  # new
        ("", "erasure"),  # a blank row is ignored
    ]
    r = await _save(owner, wanted)
    assert r.status_code == 303, r.text
    page = await owner.get(PAGE)
    assert _rows(page.text, "en") == [
        ("MY DATA", ""),
        ("DELETE MY DATA", "erasure"),
        ("SHOW MY INFO", "access"),
    ]
    assert _rows(page.text, "ar") == [("بياناتي", ""), ("بياناتي الشخصية", "access")]
    api = (await owner.get("/api/v1/privacy/settings")).json()
    assert {k["text"] for k in api["keywords"]} == {t for t, _ in wanted if t}

    # A bad list is refused, the problem named, what was typed kept, nothing saved.
    bad = await _save(owner, [("MY DATA", ""), ("my data!", "access")])
    assert bad.status_code == 422
    assert "listed twice" in parse(bad.text).find("p", id="keywords-error").text
    assert _rows(bad.text, "en") == [("MY DATA", ""), ("my data!", "access")]
    assert len((await owner.get("/api/v1/privacy/settings")).json()["keywords"]) == 5

    # The new keyword works in the chat at once: it asks to confirm a copy of the data.
    await inbound_for(owner)
    await delivered(owner.client, text_message("show my info"))
    await drain()
    async with unit_of_work() as db:
        dialog = (await db.execute(select(RequestDialog))).scalar_one()
    assert (dialog.kind, dialog.step) == ("access", "confirm")

    # Removed ones no longer do; the defaults come back with one button.
    assert "ERASE MY DATA" not in {k["key"] for k in await _keywords(ws)}
    r = await owner.post(PAGE, data={"reset": "1", "csrf_token": owner.csrf})
    assert r.status_code == 303
    page = await owner.get(PAGE)
    assert ("ERASE MY DATA", "erasure") in _rows(page.text, "en")
    assert ("SHOW MY INFO", "access") not in _rows(page.text, "en")

    async with unit_of_work() as db:
        stmt = select(AuditEvent.data).where(AuditEvent.action == "privacy_settings.updated")
        logged = list((await db.execute(stmt)).scalars())
    assert logged and all(d == {"fields": ["keywords"]} for d in logged)


async def _keywords(workspace_id: int) -> list[dict[str, Any]]:
    async with unit_of_work() as db:
        return [{"key": k["key"].upper()} for k in await settings.keywords_of(db, workspace_id)]


async def test_agents_cannot_change_the_keywords(app: Any) -> None:
    owner, _ = await owner_of(app)
    agent = await join(app, owner, "agent")
    assert (await agent.get(PAGE)).status_code in (403, 404)
    r = await _save(agent, [("HACKED", "erasure")])
    assert r.status_code in (403, 404)
    api = (await owner.get("/api/v1/privacy/settings")).json()
    assert "HACKED" not in {k["text"] for k in api["keywords"]}
    assert await count(RequestDialog) == 0
