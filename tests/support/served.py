"""An ASGI app served by uvicorn on a loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from connectx.intake.fast_http import IntakeHttpToolsProtocol

# How ``connectx serve`` serves the platform (webhook deliveries answered without ASGI).
PLATFORM: dict[str, Any] = {"http": IntakeHttpToolsProtocol}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def served(app: Any, **options: Any) -> AsyncIterator[str]:
    """``app`` on a free port (its lifespan left to the caller unless ``lifespan`` is given);
    yields its base URL and stops the server afterwards."""
    port = free_port()
    config = {"lifespan": "off", "log_config": None, "access_log": False, **options}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
