"""A streaming HTTP client for server-sent events, speaking ASGI to the real app.

httpx's ASGI transport waits for the whole response; an event stream never ends, so this client
runs the request itself and hands out frames as the app sends them."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    event: str
    id: str | None
    data: dict[str, Any]


@dataclass
class Stream:
    app: Any
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    comments: int = 0
    _frames: asyncio.Queue[Frame | None] = field(default_factory=asyncio.Queue)
    _gone: asyncio.Event = field(default_factory=asyncio.Event)
    _started: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _buffer: str = ""
    ended: bool = False

    async def __aenter__(self) -> Stream:
        path, _, query = self.path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"accept", b"text/event-stream"),
                *((k.lower().encode(), v.encode()) for k, v in self.headers.items()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        sent_request = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.response_headers = {
                    bytes(k).decode().lower(): bytes(v).decode() for k, v in message["headers"]
                }
                self._started.set()
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                self.body += chunk
                self._feed(chunk.decode())
                if not message.get("more_body"):
                    self.ended = True
                    self._frames.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                self._started.set()
                self._frames.put_nowait(None)

        self._task = asyncio.create_task(run())
        await asyncio.wait_for(self._started.wait(), 30)
        return self

    def _feed(self, text: str) -> None:
        self._buffer += text
        while "\n\n" in self._buffer:
            raw, self._buffer = self._buffer.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in raw.split("\n"):
                if line.startswith(":"):
                    self.comments += 1
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
            if "event" in fields:
                self._frames.put_nowait(
                    Frame(fields["event"], fields.get("id"), json.loads(fields.get("data", "{}")))
                )

    async def next(self, timeout: float = 20.0) -> Frame:
        frame = await asyncio.wait_for(self._frames.get(), timeout)
        assert frame is not None, f"the stream ended ({self.status}): {self.body[-300:]!r}"
        return frame

    async def until(self, event: str, timeout: float = 20.0) -> Frame:
        """The next frame of type ``event`` (frames of other types before it are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.next(max(0.01, deadline - loop.time()))
            if frame.event == event:
                return frame

    async def nothing_for(self, seconds: float) -> None:
        try:
            frame = await asyncio.wait_for(self._frames.get(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame}")

    async def __aexit__(self, *exc: object) -> None:
        self._gone.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()


def cookie_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return {"cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}
