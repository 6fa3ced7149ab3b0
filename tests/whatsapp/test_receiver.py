"""The webhook POST is answered before the page middleware (intake/receiver.py), with the same
behaviour as before: 401/413/503/200, durable before the 200."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectx.intake import batcher as batcher_module
from connectx.intake import processor
from connectx.integrations.whatsapp.signature import sign
from connectx.models.webhook_event import WebhookEvent
from tests.whatsapp.support import APP_SECRET, count, deliver, drain, load

BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Cookie": "cx_session=not-a-session; cx_consent=all",
}


async def test_a_webhook_post_skips_the_page_middleware(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    """A page request with a browser's headers would be redirected to sign in and get the page
    headers; Meta's POST gets problem+json whatever it sends, and no cookie or page header."""
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    r = await client.post(
        "/webhooks/whatsapp",
        content=body,
        headers={**BROWSER, "X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 401
    assert "set-cookie" not in r.headers and "content-security-policy" not in r.headers
    assert r.headers["x-request-id"] and r.headers["x-content-type-options"] == "nosniff"

    r = await client.post(
        "/webhooks/whatsapp",
        content=body,
        headers={**BROWSER, "X-Hub-Signature-256": sign(APP_SECRET, body)},
    )
    assert r.status_code == 200 and r.content == b""
    assert "set-cookie" not in r.headers
    assert await count(WebhookEvent) == 1
    # The rest of the app still walks the middleware (the GET handshake is a FastAPI route).
    page = await client.get("/webhooks/whatsapp", params={"hub.mode": "subscribe"})
    assert page.status_code == 403 and page.headers["x-request-id"]


async def test_a_failed_commit_is_503_and_an_unexpected_error_500_without_details(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_flush(self: Any, batch: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(batcher_module.GroupCommitBatcher, "_flush", failing_flush)
    r = await deliver(client, load("message_text"))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["type"].endswith("/store_failed")

    def broken_mask(body: bytes) -> bytes:
        raise ValueError("bug")

    monkeypatch.setattr("connectx.intake.receiver.mask_body", broken_mask)
    r = await deliver(client, load("message_text"))
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "Hello" not in r.text and "bug" not in r.text
    monkeypatch.undo()
    assert await count(WebhookEvent) == 0
    assert (await deliver(client, load("message_text"))).status_code == 200
    assert await drain() == {"processed": 1}


async def test_the_openapi_document_still_lists_the_webhook_post(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"get", "post"} <= set(paths["/webhooks/whatsapp"])


async def test_requests_that_find_the_secrets_stale_share_one_load(
    client: httpx.AsyncClient, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectx.channels import app_secrets
    from connectx.channels import repository as channel_repo

    processor.stop_embedded()
    monkeypatch.setattr(app_secrets, "cache", app_secrets.AppSecretCache())  # nothing loaded
    real, loads = channel_repo.live_apps, []
    release = asyncio.Event()

    async def slow_live_apps(db: Any) -> Any:
        loads.append(1)
        await release.wait()  # as if waiting for a pooled connection
        return await real(db)

    monkeypatch.setattr(channel_repo, "live_apps", slow_live_apps)
    deliveries = [asyncio.create_task(deliver(client, load("message_text"))) for _ in range(8)]
    for _ in range(200):
        await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*deliveries)
    assert [r.status_code for r in answers] == [200] * 8
    assert loads == [1]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A Prometheus exposition's samples by name and labels (the library's own parser)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_webhook_posts_are_counted_and_timed_in_metrics(
    client: httpx.AsyncClient, channel: dict[str, Any]
) -> None:
    stored = ("connectx_intake_requests_total", (("outcome", "stored"),))
    bad = ("connectx_intake_requests_total", (("outcome", "bad_signature"),))
    timed = ("connectx_intake_request_seconds_count", ())
    before = _samples((await client.get("/metrics")).text)
    for _ in range(3):
        assert (await deliver(client, load("message_text"))).status_code == 200
    forged = await client.post(
        "/webhooks/whatsapp", content=b"{}", headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}
    )
    assert forged.status_code == 401
    after = _samples((await client.get("/metrics")).text)
    assert after[stored] - before[stored] == 3
    assert after[bad] - before[bad] == 1
    assert after[timed] - before[timed] == 4
    inf = ("connectx_intake_request_seconds_bucket", (("le", "+Inf"),))
    assert after[inf] == after[timed]
    assert after[("connectx_intake_request_seconds_sum", ())] > 0


def test_a_keyed_state_verifies_as_the_one_shot_hmac() -> None:
    """The cache's per-secret HMAC state (copied per body) accepts and refuses exactly what
    the one-shot HMAC does, and is not changed by a check."""
    import random

    from connectx.integrations.whatsapp.signature import keyed, matches, matches_keyed, parse_header

    rng = random.Random(5)
    for _ in range(300):
        secret = rng.randbytes(rng.choice([16, 32, 64, 65, 100]))
        body = rng.randbytes(rng.randrange(0, 5000))
        state = keyed(secret)
        digest = parse_header(sign(secret, body))
        assert digest is not None
        wrong = bytes([digest[0] ^ 1]) + digest[1:]
        for candidate in (digest, wrong):
            assert matches_keyed(state, body, candidate) is matches(secret, body, candidate)
        assert matches_keyed(state, body, digest)  # the state is reusable
