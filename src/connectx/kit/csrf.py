"""Cross-site request forgery protection for cookie-authenticated state changes.

Rules (``csrf_protect``, a FastAPI dependency for every POST/PUT/PATCH/DELETE route a browser can
reach with a cookie):

- Safe methods (GET, HEAD, OPTIONS) pass.
- Requests authenticated by an API key (``Authorization: Bearer cx_…``) pass: no cookie, no CSRF.
- A signed-in session must send its own ``csrf_token`` (form field ``csrf_token`` or header
  ``X-CSRF-Token``); pages put it in forms and in htmx's ``hx-headers``.
- Anonymous forms (sign-in, sign-up, forgot password, the second-factor step) use a double-submit
  cookie: ``cx_csrf`` must equal the form field (or header). JSON requests without a session pass:
  browsers cannot send ``application/json`` cross-site without a CORS preflight, which the app
  never allows, and no session is at stake.

A failed check is 403 with a message saying what to do.

The ways in (sign-up, sign-in, forgot password, ...) use ``csrf_protect_entry``: the anonymous
rules apply there even when the browser already has a session.

Views get the token to render with :func:`token_for` and set the anonymous cookie with
:func:`issue_cookie`, or do both with :func:`page`.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from connectx.accounts.principal import Principal, optional_principal
from connectx.config import get_settings
from connectx.kit.errors import Forbidden

COOKIE = "cx_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_STATE_KEY = "cx_csrf_new"


def _is_json(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype == "application/json" or (
        ctype.startswith("application/") and ctype.endswith("+json")
    )


async def submitted_token(request: Request) -> str | None:
    """The token the request carries: the header, else the form field."""
    header = request.headers.get(HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in _FORM_TYPES:
        form = await request.form()  # Starlette caches it; the endpoint's Form() reads it again
        value = form.get(FIELD)
        return value if isinstance(value, str) else None
    return None


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


async def csrf_protect(
    request: Request, principal: Principal | None = Depends(optional_principal)
) -> None:
    """FastAPI dependency: refuse a cookie-authenticated state change without a valid token."""
    if request.method.upper() in SAFE_METHODS:
        return
    if principal is not None and principal.api_key_id is not None:
        return
    sent = await submitted_token(request)
    if principal is not None and principal.via_cookie:
        if _same(sent, principal.csrf_token):
            return
        raise Forbidden(
            "This request is missing its security token (CSRF), or the token is out of date. "
            "Reload the page and try again; API clients send the session's token in the "
            "X-CSRF-Token header."
        )
    if _is_json(request):
        return
    if _same(sent, request.cookies.get(COOKIE)):
        return
    raise Forbidden(_ANONYMOUS_REFUSAL)


_ANONYMOUS_REFUSAL = (
    "This form has expired or was not sent from this site (its security token did not match). "
    "Reload the page and try again; make sure cookies are allowed for this site."
)


async def csrf_protect_entry(
    request: Request, principal: Principal | None = Depends(optional_principal)
) -> None:
    """FastAPI dependency for the ways in (sign-up, sign-in, its second step, forgot/reset
    password, resending the confirmation link): they act on nobody's session, so the anonymous
    rules apply (double-submit cookie for forms, JSON passes) whether or not the browser is
    signed in; the session's own token is accepted too."""
    if request.method.upper() in SAFE_METHODS:
        return
    if principal is not None and principal.api_key_id is not None:
        return
    sent = await submitted_token(request)
    if principal is not None and principal.via_cookie and _same(sent, principal.csrf_token):
        return
    if _is_json(request) or _same(sent, request.cookies.get(COOKIE)):
        return
    raise Forbidden(_ANONYMOUS_REFUSAL)


def token_for(request: Request, principal: Principal | None) -> str:
    """The token a page should carry: the session's, or the anonymous double-submit value
    (reused from the ``cx_csrf`` cookie, or minted; :func:`issue_cookie` then sets it)."""
    if principal is not None and principal.via_cookie and principal.csrf_token:
        return principal.csrf_token
    existing = getattr(request.state, _STATE_KEY, None) or request.cookies.get(COOKIE)
    if existing:
        return str(existing)
    fresh = secrets.token_urlsafe(32)
    setattr(request.state, _STATE_KEY, fresh)
    return fresh


def issue_cookie(request: Request, response: Response) -> Response:
    """Set the ``cx_csrf`` cookie on ``response`` when :func:`token_for` minted a value."""
    fresh = getattr(request.state, _STATE_KEY, None)
    if fresh:
        response.set_cookie(
            COOKIE,
            fresh,
            path="/",
            httponly=True,
            samesite="lax",
            secure=get_settings().secure_cookies,
        )
    return response


def page(
    request: Request,
    template: str,
    principal: Principal | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with the caller and the right CSRF token, setting the anonymous
    cookie when needed. The usual way for views to render a page with forms."""
    from connectx.web.render import render

    token = token_for(request, principal)
    response = render(
        request,
        template,
        {"principal": principal, "csrf_token": token},
        status_code=status_code,
        **context,
    )
    issue_cookie(request, response)
    return response
