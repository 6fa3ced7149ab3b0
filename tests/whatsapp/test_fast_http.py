"""Webhook deliveries answered by the HTTP protocol without ASGI (intake/fast_http.py), over real
sockets: the same answers as uvicorn's own protocol gives through the ASGI path, and the same
connection behaviour (keep-alive, pipelining, HTTP/1.0, lost connections)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httptools
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from connectx.channels import app_secrets
from connectx.intake import batcher as batcher_module
from connectx.intake import receiver
from connectx.integrations.whatsapp.signature import sign
from connectx.models.webhook_event import WebhookEvent
from tests.support.served import PLATFORM, served
from tests.whatsapp.support import APP_SECRET, count, load

MAX = receiver.MAX_BODY


class Answer:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""


class _Reader:
    """Answers read off a socket with httptools' response parser."""

    def __init__(self) -> None:
        self.done: list[Answer] = []
        self.current = Answer()
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        self.current.status = self.parser.get_status_code()
        self.done.append(self.current)
        self.current = Answer()


async def exchange(port: int, raw: bytes, answers: int) -> tuple[list[Answer], bool]:
    """Send ``raw`` on one connection; the first ``answers`` answers, and whether the server
    closed the connection after them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        parsed = _Reader()
        while len(parsed.done) < answers:
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, f"connection closed after {len(parsed.done)} answer(s)"
            parsed.parser.feed_data(data)
        try:
            closed = await asyncio.wait_for(reader.read(1), 0.3) == b""
        except TimeoutError:
            closed = False
        return parsed.done, closed
    finally:
        writer.close()


def post(
    body: bytes,
    *,
    signature: str | None = "sign",
    headers: dict[str, str] | None = None,
    version: str = "1.1",
    path: str = receiver.PATH,
    chunk: int = 0,
) -> bytes:
    """A delivery as bytes on the wire (``chunk``: the body sent chunked, in pieces of it)."""
    lines = [f"POST {path} HTTP/{version}", "Host: 127.0.0.1", "Content-Type: application/json"]
    if signature == "sign":
        signature = sign(APP_SECRET, body)
    if signature is not None:
        lines.append(f"X-Hub-Signature-256: {signature}")
    extra = headers or {}
    if chunk:
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    elif "Content-Length" not in extra:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
async def fast(app: Any) -> AsyncIterator[int]:
    """The app served as ``connectx serve`` serves it."""
    async with served(app, **PLATFORM) as url:
        yield _port(url)


@pytest.fixture
async def plain(app: Any) -> AsyncIterator[int]:
    """The app under uvicorn's own httptools protocol: every request through ASGI."""
    async with served(app, http="httptools") as url:
        yield _port(url)


MESSAGE = json.dumps(load("message_text")).encode()


def cases() -> list[tuple[str, bytes]]:
    big = b'{"object":"whatsapp_business_account","pad":"' + b"x" * MAX + b'"}'
    return [
        ("signed", post(MESSAGE)),
        ("signed, chunked", post(MESSAGE, chunk=100)),
        ("malformed JSON, signed", post(b'{"object": "whatsapp_business_account", ')),
        ("forged", post(MESSAGE, signature="sha256=" + "0" * 64)),
        ("no signature", post(MESSAGE, signature=None)),
        ("not a signature", post(MESSAGE, signature="md5=abc")),
        ("declared too large", post(b"", headers={"Content-Length": str(MAX + 1)})),
        ("streamed too large", post(big, chunk=65536)),
    ]


def _same_shape(answer: Answer) -> dict[str, Any]:
    """What must agree between the two paths (the date and the request id differ)."""
    problem = json.loads(answer.body) if answer.body else None
    return {
        "status": answer.status,
        "body": problem,
        "content-type": answer.headers.get("content-type"),
        "content-length": answer.headers.get("content-length"),
        "retry-after": answer.headers.get("retry-after"),
        "nosniff": answer.headers.get("x-content-type-options"),
        "request id": len(answer.headers.get("x-request-id", "")),
        "server": answer.headers.get("server"),
        "date": "date" in answer.headers,
    }


async def test_every_answer_is_the_asgi_paths(
    fast: int, plain: int, channel: dict[str, Any]
) -> None:
    stored = 0
    for name, raw in cases():
        via_fast, _ = await exchange(fast, raw, 1)
        via_plain, _ = await exchange(plain, raw, 1)
        assert _same_shape(via_fast[0]) == _same_shape(via_plain[0]), name
        if via_fast[0].status == 200:
            stored += 2
        assert await count(WebhookEvent) == stored, name
    statuses = [(await exchange(fast, raw, 1))[0][0].status for _, raw in cases()]
    assert statuses == [200, 200, 200, 401, 401, 401, 413, 413]


async def test_keep_alive_and_pipelined_requests_are_answered_in_order(
    fast: int, channel: dict[str, Any]
) -> None:
    """One write holding deliveries, a page request and a forged delivery: every answer, in
    order, on the same connection (a delivery behind an unanswered one takes uvicorn's path)."""
    other = json.dumps(load("message_image")).encode()
    raw = b"".join(
        [
            post(MESSAGE),
            post(other),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            post(MESSAGE, signature="sha256=" + "1" * 64),
            post(MESSAGE),  # a repeat: stored again (deduplicated when processed)
        ]
    )
    answers, closed = await exchange(fast, raw, 5)
    assert [a.status for a in answers] == [200, 200, 200, 401, 200]
    assert not closed
    assert await count(WebhookEvent) == 3
    # And the connection goes on serving.
    answers, _ = await exchange(fast, post(MESSAGE) * 3, 3)
    assert [a.status for a in answers] == [200, 200, 200]


async def test_http_1_0_and_connection_close_end_the_connection(
    fast: int, channel: dict[str, Any]
) -> None:
    for raw in (post(MESSAGE, version="1.0"), post(MESSAGE, headers={"Connection": "close"})):
        answers, closed = await exchange(fast, raw, 1)
        assert answers[0].status == 200 and closed
    answers, closed = await exchange(fast, post(MESSAGE, signature=None, version="1.0"), 1)
    assert answers[0].status == 401 and closed


async def test_other_forms_of_the_request_take_the_asgi_path(
    fast: int, channel: dict[str, Any]
) -> None:
    """A query string, ``Expect: 100-continue``: uvicorn's path, the same behaviour."""
    answers, _ = await exchange(fast, post(MESSAGE, path=receiver.PATH + "?from=meta"), 1)
    assert answers[0].status == 200
    raw = post(MESSAGE, headers={"Expect": "100-continue"})
    answers, _ = await exchange(fast, raw, 2)
    assert [a.status for a in answers] == [100, 200]
    assert await count(WebhookEvent) == 2


async def test_a_delivery_whose_sender_left_is_stored_once_and_a_cut_body_not_at_all(
    fast: int, channel: dict[str, Any]
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", fast)
    raw = post(MESSAGE)
    writer.write(raw[:-10])  # the body cut short, then the sender goes
    await writer.drain()
    writer.close()
    _, writer = await asyncio.open_connection("127.0.0.1", fast)
    writer.write(raw)  # whole, then gone before the answer
    await writer.drain()
    writer.close()
    for _ in range(200):
        if await count(WebhookEvent) == 1:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert await count(WebhookEvent) == 1


async def test_secrets_not_held_yet_are_loaded_before_the_answer(
    fast: int, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first delivery after a change waits for the secrets in a task (the ASGI path's
    coroutine); once they are held, deliveries are answered from callbacks."""
    awaited: list[int] = []
    real = receiver.verify_and_store

    async def counted(body: bytes, signature: str | None) -> Any:
        awaited.append(1)
        return await real(body, signature)

    monkeypatch.setattr(receiver, "verify_and_store", counted)
    app_secrets.invalidate()
    for _ in range(2):
        answers, _ = await exchange(fast, post(MESSAGE), 1)
        assert answers[0].status == 200
    assert len(awaited) == 1  # the second came after the load, on the callbacks' path
    assert await count(WebhookEvent) == 2


async def test_a_failed_commit_is_503_and_an_unexpected_error_500_on_the_fast_path(
    fast: int, channel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_flush(self: Any, batch: Any) -> None:
        raise RuntimeError("disk full")

    await exchange(fast, post(MESSAGE), 1)  # the secrets held: the callbacks' path from here
    with monkeypatch.context() as m:
        m.setattr(batcher_module.GroupCommitBatcher, "_flush", failing_flush)
        answers, closed = await exchange(fast, post(MESSAGE), 1)
    assert answers[0].status == 503 and answers[0].headers["retry-after"] == "1"
    assert json.loads(answers[0].body)["type"].endswith("/store_failed") and not closed

    def broken_mask(body: bytes) -> bytes:
        raise ValueError("bug")

    with monkeypatch.context() as m:
        m.setattr("connectx.intake.fast_http.mask_body", broken_mask)
        answers, _ = await exchange(fast, post(MESSAGE), 1)
    assert answers[0].status == 500
    assert answers[0].headers["content-type"].startswith("application/problem+json")
    assert b"Hello" not in answers[0].body and b"bug" not in answers[0].body
    assert await count(WebhookEvent) == 1
    answers, _ = await exchange(fast, post(MESSAGE), 1)
    assert answers[0].status == 200


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_fast_path_answers_are_counted_and_timed(fast: int, channel: dict[str, Any]) -> None:
    stored = ("connectx_intake_requests_total", (("outcome", "stored"),))
    bad = ("connectx_intake_requests_total", (("outcome", "bad_signature"),))
    large = ("connectx_intake_requests_total", (("outcome", "too_large"),))
    timed = ("connectx_intake_request_seconds_count", ())
    metrics = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    before = _samples((await exchange(fast, metrics, 1))[0][0].body.decode())
    raw = post(MESSAGE) * 3 + post(MESSAGE, signature=None)
    await exchange(fast, raw, 4)
    await exchange(fast, post(b"", headers={"Content-Length": str(MAX + 1)}), 1)
    after = _samples((await exchange(fast, metrics, 1))[0][0].body.decode())
    assert after[stored] - before[stored] == 3
    assert after[bad] - before[bad] == 1
    assert after[large] - before.get(large, 0) == 1
    assert after[timed] - before[timed] == 5


def test_connectx_serve_hands_uvicorn_this_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests above serve the app with :data:`PLATFORM`; ``connectx serve`` must too."""
    from typer.testing import CliRunner

    from connectx.cli import app as cli

    given: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: given.append(kw))
    result = CliRunner().invoke(cli, ["serve", "--no-migrate", "--port", "8999"])
    assert result.exit_code == 0, result.output
    assert [kw["http"] for kw in given] == [PLATFORM["http"]]
