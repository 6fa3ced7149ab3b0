"""Text no database can store (a NUL character, an unpaired surrogate) and digits ``int()`` cannot
read ("²") are a 422 naming the field, on both databases (a 500 from PostgreSQL's driver, or from
``int()`` after ``str.isdigit()`` said yes, before)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.workspaces.helpers import new_client, owner_of

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


async def test_nul_in_a_chunked_body_or_a_multipart_form_is_a_422(app: Any) -> None:
    """The guard read only bodies with a Content-Length, and no multipart ones: a NUL sent
    chunked or as multipart/form-data reached the database (a 500 on PostgreSQL)."""
    owner, _ = await owner_of(app)

    async def chunked(body: bytes) -> Any:
        yield body

    r = await owner.post("/api/v1/labels", content=chunked(b'{"name": "VIP\\u0000"}'), headers=JSON)
    assert (r.status_code, r.json().get("field")) == (422, "name"), r.text
    r = await owner.post(
        "/inbox/settings/teams",
        data={"name": "Night\x00shift"},
        files={"unused": ("a.txt", b"x")},  # makes the body multipart/form-data
    )
    assert (r.status_code, r.json().get("field")) == (422, "name"), r.text
    assert (await owner.get("/api/v1/labels")).json() == []
    assert (await owner.get("/api/v1/teams")).json() == []
    # Ordinary text still goes through both ways.
    r = await owner.post("/api/v1/labels", content=chunked(b'{"name": "VIP"}'), headers=JSON)
    assert r.status_code == 201, r.text
    r = await owner.post(
        "/inbox/settings/teams", data={"name": "Night"}, files={"unused": ("a.bin", b"\x00\x01")}
    )
    assert r.status_code < 400, r.text
    assert [t["name"] for t in (await owner.get("/api/v1/teams")).json()] == ["Night"]


async def test_a_file_upload_is_not_parsed_by_the_guard(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's bytes may hold NULs (an image nearly always does): the guard reads the form
    only when a NUL stands outside the file parts, or every upload was parsed twice on the
    event loop (~80 ms per 7 MB)."""
    from connectx.kit import text_guard

    parsed: list[object] = []
    real = text_guard.MultiPartParser

    def counting(*args: Any, **kwargs: Any) -> Any:
        parsed.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(text_guard, "MultiPartParser", counting)
    owner, _ = await owner_of(app)
    upload = {"unused": ("image.bin", b"\x89PNG\x00\x00" * 1000)}
    r = await owner.post("/inbox/settings/teams", data={"name": "Night"}, files=upload)
    assert r.status_code < 400, r.text
    assert parsed == []
    r = await owner.post("/inbox/settings/teams", data={"name": "Day\x00"}, files=upload)
    assert (r.status_code, r.json().get("field")) == (422, "name"), r.text
    assert len(parsed) == 1


async def test_a_json_or_form_body_over_the_limit_is_a_413_before_it_is_read(app: Any) -> None:
    """Any JSON body was read and parsed whole, however large, even unauthenticated."""
    from connectx.kit.text_guard import MAX_INSPECTED

    async with new_client(app) as anonymous:
        huge = b"[" + b"1," * (MAX_INSPECTED // 2) + b"1]"
        r = await anonymous.post("/api/v1/auth/signin", content=huge, headers=JSON)
        assert r.status_code == 413, r.text
        assert "MB" in r.json()["detail"]

        async def chunked() -> Any:
            for _ in range(9):
                yield b" " * 2**20

        r = await anonymous.post(
            "/signin",
            content=chunked(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 413, r.text


async def test_form_fields_and_parameters_that_are_not_utf8_are_a_422(app: Any) -> None:
    """Parsers replace such bytes with U+FFFD: the text would be stored changed, silently."""
    owner, _ = await owner_of(app)
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = await owner.post("/inbox/settings/teams", content=b"name=Night%FFshift", headers=form)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0] == {"field": "name", "message": "is not valid UTF-8 text"}
    r = await owner.post("/inbox/settings/teams", content=b"name=Caf\xe9", headers=form)
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "name"), r.text
    r = await owner.get("/api/v1/canned-responses?prefix=%C3")
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "prefix"), r.text
    # UTF-8, escaped or not, is text as ever.
    r = await owner.post(
        "/inbox/settings/teams", content="name=Caf%C3%A9 ☕".encode(), headers=form
    )
    assert r.status_code < 400, r.text
    r = await owner.get("/api/v1/canned-responses?prefix=%C3%A9")
    assert r.status_code == 200, r.text
