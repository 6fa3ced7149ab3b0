"""The simulator's ASGI app (Starlette, kept lean for benchmarks): Graph routes, ``/_sim``
controls, the customer phone page and its static files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectx.simulator import control, graph, phone
from connectx.simulator.core import Simulator
from connectx.simulator.settings import SimConfig

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# htmx as installed for the platform (npm, at install time; never committed).
VENDOR = HERE.parent / "web" / "static" / "vendor"
SAVE_EVERY_S = 5.0

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


class PageHeaders:
    """A strict CSP and no-sniff on the phone page (Graph responses are left as Meta's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/" or path.startswith(("/phone", "/_static"))):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CSP.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _autosave(simulator: Simulator) -> None:
    while True:
        await asyncio.sleep(SAVE_EVERY_S)
        try:
            simulator.save(force=False)
        except OSError:
            log.exception("simulator: could not save the state file")


def create_app(config: SimConfig | None = None, simulator: Simulator | None = None) -> Starlette:
    """The simulator app for ``config`` (or an existing :class:`Simulator`)."""
    sim = simulator or Simulator(config or SimConfig())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sim.start()
        saver = asyncio.create_task(_autosave(sim)) if sim.config.state_file else None
        try:
            yield
        finally:
            if saver is not None:
                saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await saver
            await sim.stop()

    has_htmx = (VENDOR / "htmx.min.js").is_file()
    phone.templates.env.globals["htmx"] = has_htmx
    mounts = [Mount("/_static", app=StaticFiles(directory=STATIC), name="static")]
    if has_htmx:
        mounts.insert(0, Mount("/_static/vendor", app=StaticFiles(directory=VENDOR), name="vendor"))
    app = Starlette(
        routes=[*mounts, *control.routes, *phone.routes, *graph.routes],
        middleware=[Middleware(PageHeaders)],
        lifespan=lifespan,
    )
    app.state.simulator = sim
    return app
