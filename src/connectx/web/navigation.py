"""Where browsers go: the sign-in redirect and safe ``next`` targets.

Pages that need a signed-in person just depend on
:func:`connectx.accounts.principal.require_user` (or ``require_workspace`` / ``require_role``):
when it raises :class:`~connectx.kit.errors.Unauthenticated` for a browser page, the error
handler in :mod:`connectx.kit.problems` answers ``303 See Other`` to ``/signin?next=<the page>``
(htmx requests get an ``HX-Redirect`` header instead). The sign-in page then sends the person on
with :func:`safe_next`, which refuses anything but a path on this site.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse

SIGNIN_PATH = "/signin"
DEFAULT_AFTER_SIGNIN = "/workspace"
_MAX_NEXT = 2000


def safe_next(
    raw: str | None, default: str = DEFAULT_AFTER_SIGNIN, *, signin_ok: bool = False
) -> str:
    """``raw`` when it is a local path ("/workspace/members?page=2"), else ``default``.

    Refuses absolute URLs, scheme-relative ("//evil.example") and backslash tricks, control
    characters, and the sign-in page itself (no loops after signing in; ``signin_ok`` for
    forms that only go back to the page they were sent from, such as the cookie banner's on
    the sign-in page) and the sign-out route."""
    if not raw or len(raw) > _MAX_NEXT:
        return default
    if not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return default
    if any(ch in raw for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in raw):
        return default
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return default
    path = parts.path.rstrip("/")
    if path == "/signout" or (path == SIGNIN_PATH and not signin_ok):
        return default
    return raw


def signin_url(next_path: str | None = None) -> str:
    """``/signin`` with ``next`` set when it is a safe local path."""
    target = safe_next(next_path, default="")
    return f"{SIGNIN_PATH}?{urlencode({'next': target})}" if target else SIGNIN_PATH


def current_path(request: Request) -> str:
    """The path and query of ``request`` (what ``next`` should bring the person back to)."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def page_to_return_to(request: Request) -> str | None:
    """The page a person was on: this one for GET, else the same-site page that sent the form
    (htmx tells us with ``HX-Current-URL``; plain forms with ``Referer``)."""
    if request.method in ("GET", "HEAD") and not request.headers.get("hx-request"):
        return current_path(request)
    for header in ("hx-current-url", "referer"):
        value = request.headers.get(header)
        if not value:
            continue
        parts = urlsplit(value)
        if parts.netloc and parts.netloc != request.url.netloc:
            continue
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return None


def redirect(url: str, status_code: int = 303) -> RedirectResponse:
    """A redirect after a form post (303 makes the browser GET the new page)."""
    return RedirectResponse(url, status_code=status_code)


def redirect_to_signin(request: Request) -> RedirectResponse:
    return redirect(signin_url(page_to_return_to(request)))
