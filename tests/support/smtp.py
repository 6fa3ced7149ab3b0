"""A real SMTP peer (aiosmtpd) for tests.

Use the ``smtp_server`` fixture: it listens on a free loopback port, points ``CONNECTX_SMTP_URL``
at itself for the duration of the test, and collects every message it receives::

    async def test_signup_mails_a_link(client, smtp_server):
        ...
        message = await smtp_server.wait_for(to="ada@example.com")
        assert "verify" in message["Subject"]

``smtp_server.messages`` is the list of received :class:`email.message.EmailMessage` (in arrival
order); ``stop()`` and ``start()`` take the peer down and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.served import free_port


class _Collector:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        data = data.replace(b"\r\n", b"\n")  # SMTP's CRLF line ends, as Python's own "\n"
        message = message_from_bytes(data, policy=email_policy.default)
        assert isinstance(message, EmailMessage)
        self.server._received(message, [str(r) for r in envelope.rcpt_tos])
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP peer on 127.0.0.1 that keeps what it receives."""

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []  # envelope recipients, parallel to ``messages``
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            return
        controller = Controller(_Collector(self), hostname=self.host, port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Take the peer down (connections are refused until :meth:`start`)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _received(self, message: EmailMessage, rcpt_tos: list[str]) -> None:
        with self._lock:
            self.messages.append(message)
            self.recipients.append(rcpt_tos)

    def to(self, address: str) -> list[EmailMessage]:
        """Messages addressed to ``address`` (To header or envelope), in arrival order."""
        wanted = address.strip().lower()
        with self._lock:
            pairs = list(zip(self.messages, self.recipients, strict=True))
        found = []
        for message, rcpts in pairs:
            headers = [addr.lower() for _, addr in getaddresses(message.get_all("To", []))]
            if wanted in headers or wanted in (r.lower() for r in rcpts):
                found.append(message)
        return found

    async def wait_for(self, to: str | None = None, timeout: float = 5) -> EmailMessage:
        """The newest message to ``to`` (any message when None); waits up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(to) if to is not None else list(self.messages)
            if found:
                return found[-1]
            if time.monotonic() >= deadline:
                who = "anyone" if to is None else "that recipient"
                raise AssertionError(
                    f"no mail to {who} within {timeout}s ({len(self.messages)} received in all)"
                )
            await asyncio.sleep(0.02)


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """A running SMTP peer; ``CONNECTX_SMTP_URL`` points at it for this test."""
    from connectx.config import reset_settings

    server = SmtpServer()
    server.start()
    monkeypatch.setenv("CONNECTX_SMTP_URL", server.url)
    reset_settings()
    try:
        yield server
    finally:
        server.stop()
        monkeypatch.delenv("CONNECTX_SMTP_URL", raising=False)
        reset_settings()
