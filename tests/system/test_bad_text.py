"""Text no database can store (a NUL character, an unpaired surrogate) and digits ``int()`` cannot
read ("²") are a 422 naming the field, on both databases (a 500 from PostgreSQL's driver, or from
``int()`` after ``str.isdigit()`` said yes, before)."""

from __future__ import annotations

from typing import Any

from tests.workspaces.helpers import owner_of

JSON = {"content-type": "application/json"}


async def test_nul_and_unpaired_surrogates_are_a_422_naming_the_field(app: Any) -> None:
    owner, _ = await owner_of(app)
    for body, field in (
        (b'{"name": "VIP\\u0000"}', "name"),
        (b'{"name": "ok", "color": "#112233", "x": ["\\ud800"]}', "x.0"),
    ):
        r = await owner.post("/api/v1/labels", content=body, headers=JSON)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field, r.text
    r = await owner.post(
        "/api/v1/workspace/legal-holds", json={"contact_id": 1, "reason": "a\x00b"}
    )
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "reason"), r.text
    r = await owner.get("/api/v1/canned-responses", params={"prefix": "a\x00"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "prefix"), r.text
    r = await owner.post("/inbox/settings/teams", data={"name": "Night\x00shift"})
    assert r.status_code == 422, r.text
    assert "NUL" in r.json()["detail"]
    # Nothing was stored; ordinary text still is.
    assert (await owner.get("/api/v1/labels")).json() == []
    assert (await owner.post("/api/v1/labels", json={"name": "VIP ☕"})).status_code == 201


async def test_digits_that_int_cannot_read_are_a_422(app: Any) -> None:
    owner, _ = await owner_of(app)
    r = await owner.get("/api/v1/workspace/audit", params={"cursor": "\u00b2"})
    assert r.status_code == 422, r.text
    r = await owner.post(
        "/workspace/retention", data={"retention_class": "messages", "days": "\u00b2"}
    )
    assert r.status_code in (400, 422), r.text
