"""The bare ceiling: an ASGI app that reads the raw body, checks ``X-Hub-Signature-256`` with
HMAC-SHA256 and answers 200 (401 on a mismatch). Nothing else: no framework, no database.

Served by uvicorn with the options ``connectx serve`` uses, except its HTTP protocol: the
platform answers webhook deliveries in its own subclass of uvicorn's httptools protocol, without
an ASGI cycle (src/connectx/intake/fast_http.py); the ceiling is the ASGI app the issue defines,
under uvicorn's own protocol. Run: ``python bench/ceiling.py --port 8101 --secret <app secret>``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def make_app(secret: bytes) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        header = b""
        for name, value in scope["headers"]:
            if name == b"x-hub-signature-256":
                header = value
        expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        status = 200 if hmac.compare_digest(header, expected) else 401
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.secret.encode()),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
