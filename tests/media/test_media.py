"""Inbound media: the simulator's customer sends a file, the platform's background job looks it up
and downloads it with the Bearer token (over real HTTP), checks it, seals it, and serves it only to
the workspace's people."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta
from typing import Any

import pytest

from connectx.db.session import unit_of_work
from connectx.kit import clock
from connectx.kit.crypto import KeyDestroyed
from connectx.media import repository as media_repo
from connectx.media import service, store
from connectx.models.media import MediaFile
from connectx.privacy.vault import Vault
from tests.media.conftest import World
from tests.whatsapp.support import rows
from tests.workspaces.helpers import owner_of

ANA = "16505550101"
ANA_E164 = "+16505550101"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
PDF = b"%PDF-1.4\n" + b"simulated invoice " * 100_000 + b"\n%%EOF\n"  # ~1.8 MB: 2 chunks


async def customer_sends(world: World, body: dict[str, Any]) -> dict[str, Any]:
    r = await world.sim.post(f"/_sim/customers/{ANA}/messages", json=body)
    assert r.status_code == 201, r.text
    await world.settle()
    conv = await world.conversation_of(ANA_E164)
    r = await world.owner.get(f"/api/v1/conversations/{conv}/messages")
    wamid = r.json()["items"][0]["wamid"]
    assert wamid == r.json()["items"][0]["wamid"]
    return dict(next(m for m in r.json()["items"] if m["wamid"] == wamid))


async def media_state(world: World, message: dict[str, Any], timeout: float = 20.0) -> str:
    """Wait until the message's media leaves ``pending``; its state as the API shows it."""
    async with asyncio.timeout(timeout):
        while True:
            r = await world.owner.get(
                f"/api/v1/conversations/{message['conversation_id']}/messages"
            )
            found = next(m for m in r.json()["items"] if m["id"] == message["id"])
            state = str(found["media"]["state"])
            if state != "pending":
                return state
            await asyncio.sleep(0.05)


async def media_row(message_id: int) -> MediaFile:
    [row] = await rows(MediaFile, MediaFile.message_id == message_id)
    return row


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_an_image_is_downloaded_sealed_and_served(world: World) -> None:
    m = await customer_sends(
        world, {"type": "image", "mime_type": "image/png", "content_b64": b64(PNG)}
    )
    assert m["media"]["state"] in ("pending", "stored")
    assert await media_state(world, m) == "stored"
    row = await media_row(m["id"])
    assert row.size == len(PNG) and row.sha256 == hashlib.sha256(PNG).hexdigest()
    assert row.storage_key
    sealed = store.path_of(row.storage_key).read_bytes()
    assert PNG[:64] not in sealed and PNG[8:200] not in sealed  # encrypted at rest

    r = await world.owner.get(f"/api/v1/messages/{m['id']}/media")
    assert r.status_code == 200, r.text
    assert r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "private, no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("inline; filename=")

    from connectx.models.audit import AuditEvent

    [viewed] = await rows(AuditEvent, AuditEvent.action == "media.viewed")
    assert viewed.subject == f"contact:{row.contact_id}"
    assert viewed.data == {"message_id": m["id"], "media_file_id": row.id}
    assert await rows(AuditEvent, AuditEvent.action == "media.stored")


async def test_a_large_document_keeps_a_safe_filename(world: World) -> None:
    m = await customer_sends(
        world,
        {
            "type": "document",
            "mime_type": "application/pdf",
            "filename": 'in"voice\r\n<2026>.pdf',
            "content_b64": b64(PDF),
        },
    )
    assert await media_state(world, m) == "stored"
    r = await world.owner.get(f"/api/v1/messages/{m['id']}/media")
    assert r.status_code == 200 and r.content == PDF
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="in_voice_2026_.pdf"'), disposition
    assert "\r" not in disposition and "\n" not in disposition
    assert "filename*=UTF-8''in%22voice%3C2026%3E.pdf" in disposition


async def test_an_expired_url_is_asked_for_again(world: World) -> None:
    # The first url handed out answers 404, as an expired one does: a fresh one is asked for.
    r = await world.sim.post(
        "/_sim/faults", json={"endpoint": "download", "http_status": 404, "count": 1}
    )
    assert r.status_code in (200, 201), r.text
    m = await customer_sends(
        world, {"type": "image", "mime_type": "image/png", "content_b64": b64(PNG)}
    )
    assert await media_state(world, m) == "stored"
    r = await world.owner.get(f"/api/v1/messages/{m['id']}/media")
    assert r.content == PNG


async def test_a_url_past_its_five_minutes_is_replaced(world: World) -> None:
    """The simulator's clock moves past the url's expiry between lookup and download."""
    r = await world.sim.post(
        "/_sim/faults", json={"endpoint": "download", "http_status": 503, "count": -1}
    )
    fault_id = r.json().get("id")
    m = await customer_sends(
        world, {"type": "image", "mime_type": "image/png", "content_b64": b64(PNG)}
    )
    job = await service.prepare(m["id"])  # drive the steps one by one
    assert job is not None
    await world.sim.delete("/_sim/faults", params={"id": fault_id} if fault_id else None)
    info = await service.lookup(job)
    url, mime, _, expected = service.check_lookup(job, info)
    await world.sim.post("/_sim/clock", json={"advance_s": 301})
    assert await service.fetch(job, url, mime, expected) is None  # 404: expired
    done = await service.download_file(job)  # asks again, then downloads
    assert done.size == len(PNG) and done.sha256 == hashlib.sha256(PNG).hexdigest()
    store.delete(done.storage_key)


async def test_a_transient_failure_is_retried_with_backoff(world: World) -> None:
    r = await world.sim.post(
        "/_sim/faults", json={"endpoint": "download", "http_status": 503, "count": 1}
    )
    assert r.status_code in (200, 201), r.text
    m = await customer_sends(
        world, {"type": "image", "mime_type": "image/png", "content_b64": b64(PNG)}
    )
    from connectx.models.job import Job

    async with asyncio.timeout(20):
        while True:
            [job] = await rows(Job, Job.name == "media.download")
            if job.attempts >= 1 and job.status == "pending":
                break
            await asyncio.sleep(0.05)
    assert job.last_error == "Transient"
    assert (await media_row(m["id"])).state == "pending"
    clock.advance(timedelta(minutes=1))  # past the backoff: the reconciler wakes it
    assert await media_state(world, m) == "stored"
    [job] = await rows(Job, Job.name == "media.download")
    assert job.status == "done" and job.attempts == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # an image over 5 MB
        (
            {
                "type": "image",
                "mime_type": "image/jpeg",
                "content_b64": b64(b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024)),
            },
            "over the",
        ),
        # a static sticker over 100 KB
        (
            {
                "type": "sticker",
                "mime_type": "image/webp",
                "content_b64": b64(b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"0" * 120_000),
            },
            "over the 102400-byte limit",
        ),
        # declared PNG, but the bytes are a PDF
        (
            {"type": "image", "mime_type": "image/png", "content_b64": b64(PDF[:5000])},
            "content is application/pdf, not image/png",
        ),
        # a "PDF" that is a program
        (
            {
                "type": "document",
                "mime_type": "application/pdf",
                "filename": "a.pdf",
                "content_b64": b64(b"MZ\x90\x00" + b"0" * 500),
            },
            "content is application/x-executable",
        ),
    ],
)
async def test_rule_breaking_media_is_rejected_with_a_reason(
    world: World, body: dict[str, Any], reason: str
) -> None:
    m = await customer_sends(world, body)
    assert await media_state(world, m) == "rejected"
    row = await media_row(m["id"])
    assert row.reason and reason in row.reason, row.reason
    assert row.storage_key is None
    r = await world.owner.get(f"/api/v1/messages/{m['id']}/media")
    assert r.status_code == 404
    assert "rejected" in r.json()["detail"]


async def test_a_checksum_mismatch_is_rejected(world: World) -> None:
    from connectx.simulator import settings as sim_settings

    up = await world.sim.post(
        f"/v25.0/{sim_settings.DEMO_PHONE_NUMBER_ID}/media",
        files={"file": ("a.png", PNG, "image/png")},
        data={"type": "image/png", "messaging_product": "whatsapp"},
        headers={"Authorization": f"Bearer {sim_settings.DEMO_ACCESS_TOKEN}"},
    )
    assert up.status_code == 200, up.text
    image = {
        "id": up.json()["id"],
        "mime_type": "image/png",
        "sha256": hashlib.sha256(b"something else").hexdigest(),
    }
    m = await customer_sends(world, {"raw": {"from": ANA, "type": "image", "image": image}})
    assert await media_state(world, m) == "rejected"
    row = await media_row(m["id"])
    assert row.reason and "SHA-256" in row.reason


async def test_other_workspaces_and_outsiders_get_nothing(world: World, app: Any) -> None:
    m = await customer_sends(
        world, {"type": "image", "mime_type": "image/png", "content_b64": b64(PNG)}
    )
    assert await media_state(world, m) == "stored"
    stranger, _ = await owner_of(app, email="stranger@example.com")
    r = await stranger.get(f"/api/v1/messages/{m['id']}/media")
    assert r.status_code == 404
    assert PNG[:16] not in r.content
    await stranger.client.aclose()


async def test_erasure_makes_the_stored_file_unreadable(world: World) -> None:
    m = await customer_sends(
        world, {"type": "image", "mime_type": "image/png", "content_b64": b64(PNG)}
    )
    assert await media_state(world, m) == "stored"
    row = await media_row(m["id"])
    assert row.storage_key
    async with unit_of_work() as db:
        await Vault(db).destroy_subject(row.workspace_id, f"contact:{row.contact_id}")
    with pytest.raises(KeyDestroyed):
        async for _ in store.open_chunks(
            Vault(), row.workspace_id, row.contact_id, row.storage_key
        ):
            pass
    r = await world.owner.get(f"/api/v1/messages/{m['id']}/media")
    assert r.status_code == 410
    async with unit_of_work() as db:
        assert (await media_repo.by_message(db, m["id"])) is not None
