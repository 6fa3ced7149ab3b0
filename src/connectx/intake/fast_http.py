"""``POST /webhooks/whatsapp`` answered by the HTTP protocol itself, without an ASGI cycle.

uvicorn turns every request into an ASGI cycle: a scope dictionary, a cycle object with an
``asyncio.Event``, a task running the app, ``receive`` and ``send`` coroutines and the response's
messages. For Meta's deliveries that machinery cost more than everything the platform does with
them: a bare HMAC check under uvicorn spent ~50 µs of CPU a 50-update POST, the same check in
an ``asyncio.Protocol`` on httptools ~22 µs (session 28, bench/results/intake-2026-12-06g.md).

:class:`IntakeHttpToolsProtocol` is uvicorn's httptools protocol (``connectx serve`` passes it as
uvicorn's ``http`` class) with one change: a request that is exactly ``POST /webhooks/whatsapp``
(no query string, no ``Expect: 100-continue``, not queued behind an unanswered request of its
connection) is read into a :class:`_Delivery` instead of a cycle, and answered from callbacks:
the signature checked with the secrets held (:meth:`AppSecretCache.verify_held`), the body
masked and handed to the group commit (:meth:`GroupCommitBatcher.enqueue`), the 200 written
when the commit's future is done. What needs to wait (the secrets not held yet, or due for a
reload) runs the ASGI path's coroutine in a task. Every answer is the one
:mod:`connectx.intake.receiver` gives through ASGI (the same functions make it, the same
metrics count it); every other request, and a delivery in any other form, takes uvicorn's
path unchanged (tests/whatsapp/test_fast_http.py holds the two to the same answers).

The :class:`_Delivery` stands in uvicorn's ``cycle`` slot while it is read and answered, with
the attributes uvicorn's connection handling reads there (``response_complete``,
``disconnected``, ``keep_alive``, ``message_event``), so a lost connection, a server shutdown,
keep-alive and a request pipelined behind it behave as for any request. Those are uvicorn
internals: uvicorn is pinned, and its upgrade must pass that test module.
"""

from __future__ import annotations

import asyncio
import http
import time

from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connectx.channels import app_secrets
from connectx.intake import receiver
from connectx.intake.batcher import StoreFailed, batcher
from connectx.intake.masking import mask_body

_PATH = receiver.PATH.encode()
_POST = b"POST"
_OK_TAIL = b"content-length: 0\r\nx-content-type-options: nosniff\r\n\r\n"


class _Event:
    """What uvicorn sets on a lost connection (``cycle.message_event``): nothing waits on it."""

    __slots__ = ()

    def set(self) -> None:
        pass


_NO_WAITER = _Event()


class _Delivery:
    """One webhook POST of a connection, read and answered without ASGI."""

    __slots__ = (
        "chunks",
        "disconnected",
        "keep_alive",
        "message_event",
        "protocol",
        "response_complete",
        "signature",
        "size",
        "started",
    )

    def __init__(self, protocol: IntakeHttpToolsProtocol, signature: str | None) -> None:
        self.protocol = protocol
        self.signature = signature
        self.chunks: list[bytes] = []
        self.size = 0
        self.started = time.perf_counter()
        self.keep_alive = True
        self.response_complete = False  # read by uvicorn (pipelining, shutdown, lost connection)
        self.disconnected = False
        self.message_event = _NO_WAITER

    def add(self, chunk: bytes) -> None:
        if self.response_complete:
            return  # answered 413 already: the rest is read and dropped
        self.size += len(chunk)
        if self.size > receiver.MAX_BODY:
            self.chunks = []
            self.answer(receiver.too_large())
            return
        self.chunks.append(chunk)

    def complete(self) -> None:
        """The body is in: verify, store, answer (now or when the commit is done)."""
        if self.response_complete:
            return
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        try:
            app_id = app_secrets.cache.verify_held(body, self.signature)
            if app_id is app_secrets.UNDECIDED:
                self._await(body)
            elif app_id is None:
                self.answer(receiver.unsigned())
            else:
                batcher().enqueue(app_id, mask_body(body)).add_done_callback(self._stored)
        except Exception as exc:  # never a traceback to Meta
            self.answer(receiver.failed(exc))

    def _stored(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self.answer(receiver.not_stored())
            return
        error = future.exception()
        if error is None:
            receiver.RECEIVED.inc("stored")
            self.answer(receiver.OK)
        elif isinstance(error, StoreFailed):
            self.answer(receiver.not_stored())
        else:
            self.answer(receiver.failed(error))

    def _await(self, body: bytes) -> None:
        """The ASGI path's coroutine, for what must wait for the secrets to load."""
        protocol = self.protocol
        task = protocol.loop.create_task(self._verified(body))
        protocol.tasks.add(task)  # uvicorn's shutdown waits for these
        task.add_done_callback(protocol.tasks.discard)

    async def _verified(self, body: bytes) -> None:
        try:
            response = await receiver.verify_and_store(body, self.signature)
        except asyncio.CancelledError:
            self.answer(receiver.not_stored())
            raise
        except Exception as exc:
            response = receiver.failed(exc)
        self.answer(response)

    def answer(self, response: Response) -> None:
        """Write the answer (once), then let uvicorn go on with the connection."""
        if self.response_complete:
            return
        self.response_complete = True
        protocol = self.protocol
        transport = protocol.transport
        if not transport.is_closing():
            default = protocol.server_state.default_headers  # date and server, as uvicorn's
            if response is receiver.OK:
                transport.write(_ok_head(default))
            else:
                transport.write(_rendered(response, default))
            if not self.keep_alive:
                transport.close()
        receiver.SECONDS.observe(time.perf_counter() - self.started)
        protocol.on_response_complete()


_ok_for: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")


def _ok_head(default: list[tuple[bytes, bytes]]) -> bytes:
    """The 200's bytes; uvicorn replaces its default headers' list when the date changes."""
    global _ok_for
    made_for, head = _ok_for
    if made_for is not default:
        head = b"HTTP/1.1 200 OK\r\n" + _header_lines(default) + _OK_TAIL
        _ok_for = (default, head)
    return head


def _header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


def _rendered(response: Response, default: list[tuple[bytes, bytes]]) -> bytes:
    status = response.status_code
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode()),
            _header_lines(default),
            _header_lines(response.raw_headers),
            _header_lines(receiver.error_headers()),
            b"\r\n",
            bytes(response.body),
        )
    )


class IntakeHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering webhook deliveries without ASGI (module doc)."""

    _reading: _Delivery | None = None  # the delivery whose body the parser is reading

    def on_headers_complete(self) -> None:
        cycle = self.cycle
        if (
            self.url != _PATH
            or self.parser.get_method() != _POST
            or self.expect_100_continue
            or self.limit_concurrency is not None
            or (cycle is not None and not cycle.response_complete)
            or self.parser.should_upgrade()
        ):
            self._reading = None
            super().on_headers_complete()
            return
        length = signature = None
        for name, value in self.headers:  # lower-cased by uvicorn's on_header
            if name == b"content-length":
                length = value
            elif name == b"x-hub-signature-256":
                signature = value.decode("latin-1")
        delivery = self._reading = _Delivery(self, signature)
        delivery.keep_alive = (
            self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        )
        self.cycle = delivery  # type: ignore[assignment]  # (module doc)
        if receiver.declared_too_large(length):
            delivery.answer(receiver.too_large())  # refused before the body is read

    def on_body(self, body: bytes) -> None:
        delivery = self._reading
        if delivery is None:
            super().on_body(body)
        else:
            delivery.add(body)

    def on_message_complete(self) -> None:
        delivery = self._reading
        if delivery is None:
            super().on_message_complete()
        else:
            self._reading = None
            delivery.complete()
