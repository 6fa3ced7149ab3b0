"""The cookie banner's form and the cookie settings page (linked from every page's footer)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, optional_principal, truncated_ip
from connectx.cookies import service
from connectx.cookies.middleware import set_cookie_header
from connectx.db.session import db_session
from connectx.kit import csrf
from connectx.kit.errors import Conflict, InvalidInput
from connectx.web.flash import set_flash
from connectx.web.navigation import SIGNIN_PATH, redirect, safe_next
from connectx.web.templating import env

router = APIRouter(dependencies=[Depends(csrf.csrf_protect_entry)])
DB = Depends(db_session, scope="function")
WHO = Depends(optional_principal)


def _person(principal: Principal | None) -> Principal | None:
    return principal if principal is not None and principal.user_id is not None else None


def _choice(request: Request) -> service.Effective:
    found = getattr(request.state, "cookie_choice", None)
    if isinstance(found, service.Effective):
        return found
    return service.effective(dict(request.cookies), service.gpc_requested(request))


def banner_state(request: Any) -> service.Effective | None:
    """For the layout: what applies to this request (None outside a request)."""
    if request is None:
        return None
    return _choice(request)


def banner_token(request: Any, token: str | None) -> str:
    """The CSRF token for the banner's form: the page's, or a minted anonymous one (the
    cookie middleware sets its cookie)."""
    return token or csrf.token_for(request, None)


def banner_return(request: Any) -> str:
    """Where the banner's choice goes back to: the page's path (its query string can carry a
    one-time token, /reset?token=…), and on the sign-in page its own ``next`` too, so that a
    person sent there from a page they wanted still gets to it."""
    path = str(request.url.path)
    if path.rstrip("/") == SIGNIN_PATH:
        wanted = safe_next(request.query_params.get("next"), default="")
        if wanted:
            return f"{SIGNIN_PATH}?{urlencode({'next': wanted})}"
    return path


env.globals["cookie_banner_state"] = banner_state
env.globals["cookie_banner_return"] = banner_return
env.globals["cookie_banner_token"] = banner_token


@router.get("/cookies", response_class=HTMLResponse)
async def settings_page(
    request: Request, next: str = "", principal: Principal | None = WHO
) -> HTMLResponse:
    return csrf.page(
        request,
        "cookies/settings.html",
        _person(principal),
        choice=_choice(request),
        necessary=service.NECESSARY,
        wording=service.WORDING,
        next=safe_next(next, default="", signin_ok=True),
        themes=service.THEMES,
        theme=getattr(request.state, "ui_theme", None),
    )


@router.post("/cookies", response_class=HTMLResponse)
async def save(
    request: Request,
    choice: str = Form("custom"),
    preferences: str | None = Form(None),
    analytics: str | None = Form(None),
    next: str = Form(""),
    principal: Principal | None = WHO,
    db: AsyncSession = DB,
) -> Response:
    """The banner's buttons (``choice=all`` / ``necessary``) and the settings page's form."""
    if choice not in ("all", "necessary", "custom"):
        raise InvalidInput("Choose all, necessary or custom.", field="choice")
    want_prefs = choice == "all" or (choice == "custom" and bool(preferences))
    want_analytics = choice == "all" or (choice == "custom" and bool(analytics))
    gpc = service.gpc_requested(request)
    saved = await service.record(
        db,
        previous=service.read_choice(dict(request.cookies)),
        preferences=want_prefs,
        analytics=want_analytics,
        gpc=gpc,
        principal=_person(principal),
        ip=truncated_ip(request),
    )
    request.state.cookie_choice_set = saved
    response = redirect(safe_next(next, default="/", signin_ok=True))
    response.headers.append(
        "set-cookie",
        set_cookie_header(
            service.CONSENT_COOKIE, saved.cookie_value(), max_age=service.CONSENT_DAYS * 86400
        ).decode("latin-1"),
    )
    message = "Your cookie choices are saved."
    if gpc and (want_prefs or want_analytics):
        message = (
            "Your browser sends Global Privacy Control, so only strictly necessary cookies are "
            "used."
        )
    set_flash(response, message)
    return response


@router.post("/cookies/theme", response_class=HTMLResponse)
async def theme(request: Request, theme: str = Form("auto"), next: str = Form("")) -> Response:
    """A display preference; it needs the preferences category."""
    if not _choice(request).preferences:
        raise Conflict(
            "Remembering a theme needs preference cookies: allow them in the cookie settings "
            "first (they are off with Global Privacy Control)."
        )
    response = redirect(safe_next(next, default="/cookies", signin_ok=True))
    if theme in service.THEMES:
        response.headers.append(
            "set-cookie",
            set_cookie_header(
                service.PREFS_COOKIE, theme, max_age=service.PREFS_DAYS * 86400
            ).decode("latin-1"),
        )
    else:
        response.headers.append(
            "set-cookie", set_cookie_header(service.PREFS_COOKIE, "", max_age=0).decode("latin-1")
        )
    set_flash(response, "Display preference saved.")
    return response
