"""Media: upload (multipart) -> id; GET /{media-id} -> url, mime_type, sha256, file_size; the url
downloads with the owner's Bearer token and expires after 5 minutes; asking again gives a fresh
one."""

from __future__ import annotations

import base64
import hashlib

import httpx

from tests.simulator.support import AUTH, PNID, Sim, V, error_of, running

PDF = b"%PDF-1.4\n" + b"simulated invoice " * 100 + b"\n%%EOF\n"


async def upload(
    sim: Sim, data: bytes, mime: str, *, headers: dict[str, str] = AUTH, product: str = "whatsapp"
) -> httpx.Response:
    r = await sim.client.post(
        f"/{V}/{PNID}/media",
        files={"file": ("invoice.pdf", data, mime)},
        data={"type": mime, "messaging_product": product},
        headers=headers,
    )
    return r


async def test_upload_lookup_download_and_expiry(sim: Sim) -> None:
    up = await upload(sim, PDF, "application/pdf")
    assert up.status_code == 200, up.text
    media_id = up.json()["id"]
    assert str(media_id).isdigit()

    r = await sim.client.get(f"/{V}/{media_id}", headers=AUTH)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["mime_type"] == "application/pdf"
    assert info["file_size"] == len(PDF)
    assert info["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert info["id"] == media_id and info["messaging_product"] == "whatsapp"
    url = info["url"]

    # the url needs the number's bearer token
    assert (await sim.client.get(url)).status_code == 401
    assert (await sim.client.get(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
    r = await sim.client.get(url, headers=AUTH)
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"] == "application/pdf"

    # a tampered url is unknown
    assert (await sim.client.get(url.replace("&hash=", "&hash=0"), headers=AUTH)).status_code == 404

    # still good before 5 minutes, gone after (the simulator's clock also moves with real time:
    # 10 s of slack for a loaded machine between issuing the url and this request)
    await sim.clock(advance_s=290)
    assert (await sim.client.get(url, headers=AUTH)).status_code == 200
    await sim.clock(advance_s=11)
    r = await sim.client.get(url, headers=AUTH)
    assert r.status_code == 404

    # asking again gives a fresh url that works
    fresh = (await sim.client.get(f"/{V}/{media_id}", headers=AUTH)).json()["url"]
    assert fresh != url
    r = await sim.client.get(fresh, headers=AUTH)
    assert r.status_code == 200 and r.content == PDF


async def test_media_lookup_needs_the_owners_token(sim: Sim) -> None:
    up = await upload(sim, PDF, "application/pdf")
    r = await sim.client.get(f"/{V}/{up.json()['id']}")
    assert r.status_code == 401 and error_of(r)["code"] == 190
    r = await sim.client.get(f"/{V}/{up.json()['id']}", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401 and error_of(r)["code"] == 190
    r = await sim.client.get(f"/{V}/1234567", headers=AUTH)
    assert r.status_code == 400 and error_of(r)["code"] == 100


async def test_upload_rules(sim: Sim) -> None:
    big = await upload(sim, b"\xff\xd8" + b"\x00" * (5 * 1024 * 1024), "image/jpeg")
    assert big.status_code == 400 and big.json()["error"]["code"] == 131053
    odd = await upload(sim, b"MZ\x90\x00", "application/x-msdownload")
    assert odd.status_code == 400 and odd.json()["error"]["code"] == 131053
    product = await upload(sim, PDF, "application/pdf", product="instagram")
    assert product.status_code == 400 and product.json()["error"]["code"] == 100
    token = await upload(sim, PDF, "application/pdf", headers={})
    assert token.status_code == 401 and token.json()["error"]["code"] == 190
    ok = await upload(sim, b"\xff\xd8" + b"\x00" * 1000, "image/jpeg")
    assert ok.status_code == 200


async def test_uploaded_media_can_be_sent_by_id_and_deleted(sim: Sim) -> None:
    up = await upload(sim, PDF, "application/pdf")
    media_id = up.json()["id"]
    await sim.customer_says("16505550101")
    r = await sim.send(
        {
            "to": "16505550101",
            "type": "document",
            "document": {"id": media_id, "filename": "invoice.pdf", "caption": "Yours"},
        }
    )
    assert r.status_code == 200, r.text
    r = await sim.client.delete(f"/{V}/{media_id}", headers=AUTH)
    assert r.status_code == 200 and r.json() == {"success": True}
    r = await sim.client.get(f"/{V}/{media_id}", headers=AUTH)
    assert r.status_code == 400 and error_of(r)["code"] == 100


async def test_customer_media_is_served_to_the_receiving_number_only() -> None:
    second = {
        "phone_number_id": "100000000000002",
        "display_phone_number": "+15550100002",
        "waba_id": "200000000000002",
        "access_token": "token-2",
    }
    async with running({"numbers": [{}, second]}) as sim:
        photo = b"\x89PNG\r\n\x1a\n" + b"pixels" * 50
        said = await sim.customer_says(
            "16505550101",
            {
                "type": "image",
                "caption": "the box arrived damaged",
                "mime_type": "image/png",
                "content_b64": base64.b64encode(photo).decode(),
            },
        )
        image = said["message"]["image"]
        assert image["caption"] == "the box arrived damaged"
        assert image["sha256"] == hashlib.sha256(photo).hexdigest()
        info = await sim.client.get(f"/{V}/{image['id']}", headers=AUTH)
        assert info.status_code == 200 and info.json()["file_size"] == len(photo)
        r = await sim.client.get(info.json()["url"], headers=AUTH)
        assert r.content == photo
        other = await sim.client.get(
            f"/{V}/{image['id']}", headers={"Authorization": "Bearer token-2"}
        )
        assert other.status_code == 401 and error_of(other)["code"] == 190
        # inbound media ids live 7 days
        await sim.clock(advance_s=7 * 24 * 3600 + 1)
        gone = await sim.client.get(f"/{V}/{image['id']}", headers=AUTH)
        assert gone.status_code == 400 and error_of(gone)["code"] == 100


async def test_download_faults(sim: Sim) -> None:
    up = await upload(sim, PDF, "application/pdf")
    url = (await sim.client.get(f"/{V}/{up.json()['id']}", headers=AUTH)).json()["url"]
    await sim.client.post("/_sim/faults", json={"http_status": 503, "endpoint": "download"})
    assert (await sim.client.get(url, headers=AUTH)).status_code == 503
    assert (await sim.client.get(url, headers=AUTH)).status_code == 200
