"""Access: the archive holds every record about the subject (JSON, CSV, the file she sent, a
readable summary) and nothing of anyone else; it is sealed at rest; its link works once and for
24 hours; every step is audited."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.models.audit import AuditEvent
from connectx.models.privacy_rights import PrivacyExport
from connectx.privacy.rights import Outcome, Right, execute, exports
from connectx.privacy.rights.records import tables_for
from tests.privacy import rights_world as w

# Tables that may hold nothing of a freshly seeded subject (proofs of requests not made yet).
MAY_BE_EMPTY = {
    "data_request_dialogs",  # a WhatsApp dialog lives 30 minutes
    "legal_holds",
    "message_status_events",
    "processing_restrictions",
    "privacy_exports",
    "recipient_notices",
}


async def _access(world: w.World) -> tuple[Any, str]:
    async with unit_of_work() as db:
        result = await execute(db, Right.ACCESS, world.subject, actor="user:1", request_id=41)
        assert result.artifact_id is not None
        token = await exports.issue_link(db, result.artifact_id, actor="user:1")
    return result, token


async def _download(client: Any, token: str) -> bytes:
    page = await client.get("/privacy/exports/download", params={"token": token})
    assert page.status_code == 200 and "Download my data" in page.text
    r = await client.post(
        "/privacy/exports/download",
        data={"token": token, "csrf_token": client.cookies.get("cx_csrf")},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["cache-control"] == "private, no-store"
    return r.content


async def test_access_holds_all_of_hers_and_nothing_else(
    rights_world: w.World, client: Any
) -> None:
    world = rights_world
    result, token = await _access(world)
    assert result.outcome is Outcome.DONE and result.counts["files"] == 1

    # Every table about her has records in the seed (a new table must be seeded here too).
    empty = [
        f.table.name
        for f in tables_for(world.subject)
        if f.about and f.table.name not in MAY_BE_EMPTY and not result.counts.get(f.table.name)
    ]
    assert not empty, f"seed the subject's data in {empty} (tests/privacy/rights_world.py)"

    # Sealed at rest: the archive on disk shows nothing of hers.
    async with unit_of_work() as db:
        export = await db.get(PrivacyExport, result.artifact_id)
        assert export is not None and export.storage_key
        sealed = exports.exports_dir().joinpath(export.storage_key).read_bytes()
    for value in [*w.ZARA.values(), w.REPLY.encode(), b"zara-photo-of-receipt", b"PK\x03\x04"]:
        assert value not in sealed
    assert w.ATTRIBUTE[1].encode() not in sealed and w.NOTE.encode() not in sealed

    archive = zipfile.ZipFile(io.BytesIO(await _download(client, token)))
    names = set(archive.namelist())
    assert {"data.json", "index.html", "csv/contacts.csv", "csv/messages.csv"} <= names
    [photo] = [n for n in names if n.startswith("files/")]
    assert archive.read(photo) == w.PHOTO

    everything = b"".join(archive.read(n) for n in names if not n.startswith("files/"))
    theirs = [w.CAPTION, w.REPLY, w.NOTE, w.ATTRIBUTE[1]]  # notes and attributes about her too
    for value in [*w.ZARA.values(), *(t.encode() for t in theirs)]:
        assert value in everything, value
    for person, _, _ in world.others():
        for value in (person.words, person.bsuid):
            assert value.encode() not in everything, (person.name, value)
    assert w.OMAR.name.encode() not in everything and w.YUSUF.name.encode() not in everything

    data = json.loads(archive.read("data.json"))
    assert data["format"] == "connectx.access/1" and data["subject"] == world.subject.ref
    [contact] = data["tables"]["contacts"]
    assert contact["name"] == w.ZARA.name and contact["phone"] == w.ZARA.phone
    assert "phone_index" not in contact and "bsuid_index" not in contact
    texts = {m.get("body") for m in data["tables"]["messages"]}
    assert {w.ZARA.words, w.CAPTION, w.REPLY} <= texts
    assert {m["workspace_id"] for m in data["tables"]["messages"]} == {world.ws_a}
    # Whoever acted on her data is named by kind only.
    actors = {e["actor"] for e in data["tables"]["audit_events"]}
    assert actors <= {"user", "system", world.subject.ref, "contact", "api_key"}, actors

    summary = archive.read("index.html").decode()
    for words in ("Consent history", "Meta Platforms", "contract", "product_updates", "years"):
        assert words in summary, words

    # Once only: the second use is refused (410), audited, and the file is gone.
    again = await client.post(
        "/privacy/exports/download",
        data={"token": token, "csrf_token": client.cookies.get("cx_csrf")},
    )
    assert again.status_code == 410
    assert not exports.exports_dir().joinpath(export.storage_key).exists()
    async with unit_of_work() as db:
        actions = [
            e.action
            for e in (
                await db.execute(
                    select(AuditEvent)
                    .where(AuditEvent.subject == world.subject.ref)
                    .order_by(AuditEvent.id)
                )
            ).scalars()
        ]
    for action in (
        "privacy.export_created",
        "privacy.right_executed",
        "privacy.export_link_issued",
        "privacy.export_downloaded",
        "privacy.export_refused",
    ):
        assert action in actions, action


async def test_a_link_expires_after_24_hours(rights_world: w.World, client: Any) -> None:
    world = rights_world
    _, token = await _access(world)
    clock.advance(timedelta(hours=24, seconds=1))
    page = await client.get("/privacy/exports/download", params={"token": token})
    assert page.status_code == 410 and "expired" in page.text
    r = await client.post(
        "/privacy/exports/download",
        data={"token": token, "csrf_token": client.cookies.get("cx_csrf")},
    )
    assert r.status_code == 410
    bogus = await client.post(
        "/privacy/exports/download",
        data={"token": "not-a-token", "csrf_token": client.cookies.get("cx_csrf")},
    )
    assert bogus.status_code == 410


async def test_what_the_copy_leaves_out_says_why(rights_world: w.World) -> None:
    # Told to the person on WhatsApp and on the request page: "what: why". The why was the what
    # again ("keyed hashes …: not disclosed: keyed hashes …").
    result, _ = await _access(rights_world)
    assert result.kept, "her copy leaves out at least the keyed hashes of her number"
    for item in result.kept:
        assert item.why and item.what not in item.why, (item.what, item.why)
