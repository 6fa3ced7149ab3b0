"""The webhook endpoint: handshake, signatures over the raw bytes, size limit, durable storage
before the 200, group commit, malformed and unroutable deliveries kept for inspection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from connectx.db.session import unit_of_work
from connectx.integrations.whatsapp.signature import sign
from connectx.models.message import Message
from connectx.models.webhook_event import WebhookEvent
from tests.whatsapp.support import (
    APP_SECRET,
    PNID_B,
    VERIFY_TOKEN,
    count,
    deliver,
    drain,
    event_counts,
    for_number,
    load,
    rows,
)


def _handshake(mode: str | None = "subscribe", token: str | None = VERIFY_TOKEN) -> dict[str, str]:
    params = {"hub.challenge": "1158201444"}
    if mode is not None:
        params["hub.mode"] = mode
    if token is not None:
        params["hub.verify_token"] = token
    return params


async def test_handshake_echoes_the_challenge_for_a_known_verify_token(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    r = await client.get("/webhooks/whatsapp", params=_handshake())
    assert r.status_code == 200
    assert r.text == "1158201444"
    assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        _handshake(token="wrong-token"),
        _handshake(mode="unsubscribe"),
        _handshake(mode=None),
        _handshake(token=None),
    ],
)
async def test_handshake_refuses_anything_else(
    client: httpx.AsyncClient, channel: dict[str, Any], params: dict[str, str]
) -> None:
    r = await client.get("/webhooks/whatsapp", params=params)
    assert r.status_code == 403
    assert "1158201444" not in r.text


async def test_handshake_before_any_app_is_connected_is_403(client: httpx.AsyncClient) -> None:
    assert (await client.get("/webhooks/whatsapp", params=_handshake())).status_code == 403


async def test_a_signed_delivery_is_stored_encrypted_before_the_200(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    body = json.dumps(load("message_text")).encode()
    r = await deliver(client, body)
    assert r.status_code == 200
    # On disk the moment the 200 is out, whether or not processing has run.
    (event,) = await rows(WebhookEvent)
    assert event.body_size == len(body)
    assert event.meta_app_id == channel["app"]["id"]
    async with unit_of_work() as db:
        raw = (await db.execute(text("SELECT body_enc FROM webhook_events"))).scalar_one()
    assert b"Hello, is my order" not in bytes(raw) and b"16505551234" not in bytes(raw)
    assert await drain() == {"processed": 1}


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "0" * 64,  # forged
        "",  # missing
        sign("some-other-apps-secret", b"x"),  # another secret
        "sha1=" + "a" * 40,  # wrong scheme
        "sha256=not-hex",
    ],
)
async def test_bad_or_missing_signatures_are_401_and_nothing_is_stored(
    client: httpx.AsyncClient, channel: dict[str, Any], signature: str
) -> None:
    r = await deliver(client, load("message_text"), signature=signature)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await count(WebhookEvent) == 0


async def test_a_re_serialised_body_does_not_verify(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """Meta signs the bytes it sent; the same JSON with other spacing is another body."""
    original = json.dumps(load("message_text"), separators=(",", ":")).encode()
    reserialised = json.dumps(json.loads(original), indent=1).encode()
    assert json.loads(reserialised) == json.loads(original)
    r = await deliver(client, reserialised, signature=sign(APP_SECRET, original))
    assert r.status_code == 401
    r = await client.post(
        "/webhooks/whatsapp",
        content=original + b" ",
        headers={"X-Hub-Signature-256": sign(APP_SECRET, original)},
    )
    assert r.status_code == 401
    assert await count(WebhookEvent) == 0


async def test_bodies_over_3_mb_are_413(client: httpx.AsyncClient, channel: dict[str, Any]) -> None:
    big = b'{"object":"whatsapp_business_account","pad":"' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = await deliver(client, big)
    assert r.status_code == 413
    assert r.json()["status"] == 413

    async def chunks() -> Any:  # no Content-Length: the stream is cut off at the limit
        for _ in range(4):
            yield b"x" * (1024 * 1024)

    r = await client.post(
        "/webhooks/whatsapp",
        content=chunks(),
        headers={"X-Hub-Signature-256": sign(APP_SECRET, b"")},
    )
    assert r.status_code == 413
    assert await count(WebhookEvent) == 0


async def test_malformed_json_with_a_valid_signature_is_kept_and_flagged(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    for body in (b'{"object": "whatsapp_business_account", "entry": [', b"\xff\xfe", b"[1, 2]"):
        r = await deliver(client, body)
        assert r.status_code == 200
    assert await drain() == {"malformed": 3}
    assert await count(Message) == 0


async def test_updates_for_unknown_numbers_are_kept_and_flagged(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    r = await deliver(client, for_number(load("message_text"), "999999999999999"))
    assert r.status_code == 200
    assert await drain() == {"processed": 1}
    (event,) = await rows(WebhookEvent)
    assert event.unrouted == 1 and event.body_enc is not None
    assert await count(Message) == 0


async def test_numbers_disconnected_stop_routing_but_nothing_crashes(
    client: httpx.AsyncClient, owner: Any, channel: dict[str, Any]
) -> None:
    # A second number keeps the app (and its secret) alive after the first is disconnected.
    from tests.whatsapp.support import WABA_B, connect

    await connect(owner, pnid=PNID_B, waba=WABA_B, display="+15550783882", verify_token=None)
    assert (await owner.delete(f"/api/v1/channels/{channel['id']}")).status_code == 204
    r = await deliver(client, load("message_text"))
    assert r.status_code == 200
    await drain()
    (event,) = await rows(WebhookEvent)
    assert event.unrouted == 1 and event.status == "processed"


async def test_concurrent_deliveries_share_commits(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    from connectx.intake.batcher import BATCH_SIZE

    def commits() -> float:
        return next(
            s.value for m in BATCH_SIZE.collect() for s in m.samples if s.name.endswith("_count")
        )

    before = commits()
    payload = load("message_text")
    bodies = []
    for i in range(60):
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = f"wamid.CONC{i}"
        bodies.append(json.dumps(payload).encode())
    responses = await asyncio.gather(*(deliver(client, b) for b in bodies))
    assert [r.status_code for r in responses] == [200] * 60
    assert await count(WebhookEvent) == 60
    assert commits() - before < 60  # several requests rode on one commit
    await drain()
    assert await count(Message) == 60


async def test_a_failed_commit_is_a_5xx_and_nothing_is_acknowledged(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the database refuses the insert; Meta must get an error to retry."""
    from connectx.intake import repository

    async def refuse(*_: Any, **__: Any) -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(repository.NewEventWriter, "commit_made", refuse)
    r = await deliver(client, load("message_text"))
    assert r.status_code == 503
    assert r.headers["retry-after"]
    monkeypatch.undo()
    assert await count(WebhookEvent) == 0
    assert (await deliver(client, load("message_text"))).status_code == 200
    assert await event_counts() in ({"pending": 1}, {"processed": 1})


async def test_a_group_commit_that_fails_inside_its_transaction_stores_nothing(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database itself refuses a row half-way through the group commit's transaction (on
    SQLite: the one-trip BEGIN / INSERT / COMMIT): the batch is rolled back, the request is a
    503, and the connection goes back clean, so the next delivery is stored."""
    from connectx.intake.batcher import GroupCommitBatcher

    real_sealing = GroupCommitBatcher._sealing

    async def broken(self: GroupCommitBatcher, batch: Any) -> Any:
        make = await real_sealing(self, batch)

        def with_a_bad_row() -> Any:  # body_size NOT NULL: refused after the first row
            rows = make()
            return [*rows, (*rows[0][:3], None)]

        return with_a_bad_row

    monkeypatch.setattr(GroupCommitBatcher, "_sealing", broken)
    r = await deliver(client, load("message_text"))
    assert r.status_code == 503
    monkeypatch.undo()
    assert await count(WebhookEvent) == 0
    assert (await deliver(client, load("message_text"))).status_code == 200
    assert await count(WebhookEvent) == 1
