"""The application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from connectx import __version__
from connectx.accounts import endpoints as account_api
from connectx.accounts import views as account_views
from connectx.audit import endpoints as audit_api
from connectx.audit import views as audit_views
from connectx.channels import endpoints as channel_api
from connectx.channels import views as channel_views
from connectx.config import get_settings
from connectx.contacts import endpoints as contact_api
from connectx.conversations import endpoints as conversation_api
from connectx.cookies import views as cookie_views
from connectx.cookies.middleware import CookieChoices
from connectx.db.engine import dispose_engines
from connectx.inbox import endpoints as inbox_api
from connectx.inbox.ui import pwa as inbox_pwa
from connectx.inbox.ui import settings_views as inbox_settings
from connectx.inbox.ui import triage_views as inbox_triage
from connectx.inbox.ui import views as inbox_views
from connectx.intake import endpoints as webhook_api
from connectx.intake import receiver as webhook_receiver
from connectx.kit import logging as cx_logging
from connectx.kit import problems
from connectx.kit.middleware import RequestContext
from connectx.kit.text_guard import TextGuard
from connectx.media import endpoints as media_api
from connectx.outbound import endpoints as outbound_api
from connectx.policies import endpoints as policy_api
from connectx.policies import views as policy_views
from connectx.policies.gate import PolicyGate
from connectx.privacy import consent_endpoints as consent_api
from connectx.privacy import consent_views, ropa_views, unsubscribe_views
from connectx.privacy import ropa_endpoints as ropa_api
from connectx.privacy.requests import endpoints as privacy_request_api
from connectx.privacy.requests import views as privacy_request_views
from connectx.privacy.rights import downloads as privacy_downloads
from connectx.realtime import endpoints as realtime_api
from connectx.retention import endpoints as retention_api
from connectx.retention import views as retention_views
from connectx.security import endpoints as security_api
from connectx.security import views as security_views
from connectx.security.middleware import SecuritySignals
from connectx.system import endpoints as system_api
from connectx.templates_wa import endpoints as template_api
from connectx.web import views as web_views
from connectx.workspaces import endpoints as workspace_api
from connectx.workspaces import views as workspace_views

STATIC = Path(__file__).resolve().parent / "web" / "static"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from connectx.intake import batcher as intake_batcher
    from connectx.intake import process as processing_process
    from connectx.intake import processor as webhook_processor
    from connectx.jobs.runtime import start_embedded, stop_embedded
    from connectx.outbound import graph
    from connectx.outbound import pacer as outbound_pacer
    from connectx.realtime import bus as realtime

    settings = get_settings()
    await realtime.start(app)
    await start_embedded(settings)
    if not await processing_process.start():
        webhook_processor.start_embedded(settings)
    outbound_pacer.start_embedded()
    try:
        yield
    finally:
        await asyncio.to_thread(outbound_pacer.stop_embedded)
        await webhook_processor.close_embedded()
        await processing_process.stop()
        await stop_embedded()
        await realtime.stop(app)
        await graph.close()  # this loop's Graph session (requests and the processor used it)
        await intake_batcher.close()  # its kept connection goes back before the pools close
        await dispose_engines()


class ConnectX(FastAPI):
    """The app; Meta's webhook POSTs are answered before any middleware runs (they need no
    session, cookie, policy gate or page routing: ``connectx.intake.receiver``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if webhook_receiver.is_webhook_post(scope):
            await webhook_receiver.serve(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app() -> FastAPI:
    settings = get_settings()
    cx_logging.configure(settings.log_level, settings.log_json)
    app = ConnectX(
        title="ConnectX",
        version=__version__,
        description="WhatsApp Business customer engagement that keeps its privacy promises.",
        lifespan=lifespan,
        docs_url=None,  # /docs is connectx.web.views.api_reference (CSP-safe, npm assets)
        openapi_url="/openapi.json",
    )
    problems.install(app)
    # The inbox's pages first: FastAPI tries every route in order, ~10 µs each, and agents ask
    # for these all day (behind ~180 other routes they cost 2-3 ms a page). No route answers
    # another's paths, so the order changes nothing else (tests/web/test_routing.py).
    for router in (inbox_views.router, inbox_triage.router):
        app.include_router(router, include_in_schema=False)
    for router in (system_api.router, account_api.router, workspace_api.router):
        app.include_router(router)
    for router in (
        channel_api.router,
        conversation_api.router,
        contact_api.router,
        webhook_api.router,
        retention_api.router,
        security_api.router,
        policy_api.router,
        outbound_api.router,
        template_api.router,
        media_api.router,
        realtime_api.router,
        consent_api.router,
        audit_api.router,
        privacy_request_api.router,
        inbox_api.router,
        ropa_api.router,
    ):
        app.include_router(router)
    for router in (
        web_views.router,
        account_views.router,
        workspace_views.router,
        channel_views.router,
        retention_views.router,
        ropa_views.router,
        security_views.router,
        policy_views.router,
        cookie_views.router,
        consent_views.router,
        unsubscribe_views.router,
        privacy_downloads.router,
        audit_views.router,
        inbox_settings.router,
        inbox_pwa.router,
        *privacy_request_views.routers,
    ):
        app.include_router(router, include_in_schema=False)
    STATIC.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(CookieChoices)
    app.add_middleware(PolicyGate)
    app.add_middleware(SecuritySignals)
    app.add_middleware(TextGuard)  # NUL / unpaired surrogates: a 422 before anything reads them
    app.add_middleware(RequestContext, https=settings.secure_cookies)
    return app
