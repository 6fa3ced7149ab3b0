"""Render a page with what every page needs (the caller, the CSRF token, flash messages)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from connectx.web import flash as flash_messages
from connectx.web.templating import templates


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """Render ``template`` (which extends ``base.html``).

    ``context`` may hold ``principal`` (or None), ``csrf_token`` and ``flash``; all default to
    None. When a principal is given without a ``csrf_token``, its session's token is used, so
    forms and htmx requests on the page carry it. A flash message set with
    :func:`connectx.web.flash.set_flash` on the previous response is shown once, then cleared.
    """
    ctx: dict[str, Any] = {"principal": None, "csrf_token": None, "flash": None}
    ctx.update(context or {})
    ctx.update(extra)
    if ctx["csrf_token"] is None and ctx["principal"] is not None:
        ctx["csrf_token"] = getattr(ctx["principal"], "csrf_token", None)
    pending = flash_messages.read_flash(request)
    if ctx["flash"] is None and pending:
        ctx["flash"] = pending
    response = templates.TemplateResponse(request, template, ctx, status_code=status_code)
    if pending is not None or flash_messages.COOKIE in request.cookies:
        flash_messages.clear_flash(response)
    return response
