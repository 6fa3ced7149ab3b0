"""Render a page with what every page needs (the caller, the CSRF token, flash messages)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from connectx.web.templating import templates


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """``context`` may hold ``principal`` (or None) and ``csrf_token``; both default to None."""
    ctx: dict[str, Any] = {"principal": None, "csrf_token": None, "flash": None}
    ctx.update(context or {})
    ctx.update(extra)
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)
