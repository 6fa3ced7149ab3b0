"""Portability: what the subject provided (profile, the messages and files she sent, her consent
decisions) as JSON with its schema, nothing the business wrote and nothing of anyone else."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from connectx.db.session import unit_of_work
from connectx.privacy.rights import Outcome, Right, execute, exports
from connectx.privacy.rights.portability import FORMAT
from tests.privacy import rights_world as w


async def test_portability_gives_what_she_provided_as_importable_json(
    rights_world: w.World, client: Any
) -> None:
    world = rights_world
    async with unit_of_work() as db:
        result = await execute(db, Right.PORTABILITY, world.subject)
        assert result.outcome is Outcome.DONE and result.artifact_id is not None
        token = await exports.issue_link(db, result.artifact_id)
    await client.get("/privacy/exports/download", params={"token": token})
    r = await client.post(
        "/privacy/exports/download",
        data={"token": token, "csrf_token": client.cookies.get("cx_csrf")},
    )
    assert r.status_code == 200, r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    doc = json.loads(archive.read("portability.json"))
    schema = json.loads(archive.read("schema.json"))
    assert doc["format"] == FORMAT == schema["properties"]["format"]["const"]
    assert set(schema["required"]) <= set(doc)
    assert doc["profile"]["name"] == w.ZARA.name and doc["profile"]["phone"] == w.ZARA.phone
    assert doc["profile"]["whatsapp_user_id"] == w.ZARA.bsuid
    texts = [m["text"] for m in doc["messages"]]
    assert w.ZARA.words in texts and w.CAPTION in texts
    assert w.REPLY not in texts  # the business wrote that, she did not
    [photo] = [m for m in doc["messages"] if m["file"]]
    assert archive.read(photo["file"]) == w.PHOTO
    assert {(c["purpose"], c["granted"]) for c in doc["consents"]} >= {("product_updates", True)}
    everything = b"".join(archive.read(n) for n in archive.namelist())
    for person, _, _ in world.others():
        assert person.words.encode() not in everything
