"""One place renders every error: problem+json for the API and programs, an HTML page for people.

A request gets the HTML page when it is a browser page request: its path is not under ``/api``,
it is not an htmx request (htmx gets problem+json, shown by static/js/app.js), and its ``Accept``
header ranks ``text/html`` above JSON (browsers send ``text/html,…,*/*;q=0.8``; ``curl``, httpx
and ``fetch`` send ``*/*``, which keeps JSON). The page has the same status and message.

A browser page that needs a signed-in person (:class:`Unauthenticated`) is redirected to
``/signin?next=<the page>`` instead; an htmx request gets the 401 with an ``HX-Redirect`` header.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectx.kit.errors import DomainError, TooManyRequests, Unauthenticated
from connectx.kit.logging import request_id as request_id_var
from connectx.kit.numbers import INT64_MAX, number_out_of_range

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
_JSON_TYPES = ("application/json", PROBLEM)

# Friendly titles for HTTP errors raised by the framework (unknown page, wrong method, …).
_HTTP_TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Not allowed",
    404: "Page not found",
    405: "Not available this way",
    409: "Conflict",
    410: "No longer available",
    413: "Too large",
    415: "Unsupported format",
    422: "Invalid input",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}
_HTTP_DETAILS = {
    404: "There is no page at this address. Check the link, or start again from the home page.",
    405: "This address does not accept that kind of request. Go back and use the page's form.",
}


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"https://connectx.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _ranges(accept: str) -> list[tuple[str, float]]:
    out = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        out.append((media, q))
    return out


def _quality(ranges: list[tuple[str, float]], media: str) -> float:
    """The q the most specific matching range gives ``media`` (RFC 9110 §12.5.1)."""
    kind = media.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for candidate, q in ranges:
        if candidate == media:
            specificity = 2
        elif candidate == f"{kind}/*":
            specificity = 1
        elif candidate == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def prefers_html(accept: str | None) -> bool:
    """Whether an ``Accept`` header ranks HTML strictly above JSON."""
    if not accept:
        return False
    ranges = _ranges(accept)
    html = _quality(ranges, "text/html")
    json = max(_quality(ranges, media) for media in _JSON_TYPES)
    return html > 0 and html > json


def wants_html(request: Request) -> bool:
    """A person's browser asking for a page (not the API, not htmx, not a program)."""
    path = request.url.path
    if path == "/api" or path.startswith("/api/"):
        return False
    if request.headers.get("hx-request"):
        return False
    return prefers_html(request.headers.get("accept"))


def _request_id(request: Request) -> str | None:
    return request_id_var.get(None) or getattr(request.state, "request_id", None)


def html_error_page(
    request: Request,
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response | None:
    """The friendly page for an error (None if it cannot be rendered: then JSON is sent)."""
    try:
        from connectx.web.render import render

        response = render(
            request,
            "web/error.html",
            status_code=status,
            status=status,
            title=title,
            detail=detail,
            errors=extra.get("errors"),
            retry_after=extra.get("retry_after"),
            request_id=_request_id(request),
        )
    except Exception:  # never let the error page turn an error into a different one
        log.exception("could not render the HTML error page")
        return None
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _signin_redirect(request: Request, exc: Unauthenticated) -> Response | None:
    from connectx.web import navigation

    if request.headers.get("hx-request") and not request.url.path.startswith("/api/"):
        response = problem_response(exc.status, exc.title, exc.detail, exc.code, **exc.extra)
        response.headers["HX-Redirect"] = navigation.signin_url(
            navigation.page_to_return_to(request)
        )
        return response
    if wants_html(request):
        return navigation.redirect_to_signin(request)
    return None


def respond(
    request: Request,
    status: int,
    title: str,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """problem+json, or the HTML page when a browser asked for a page."""
    if wants_html(request):
        page = html_error_page(request, status, title, detail, headers, **extra)
        if page is not None:
            return page
    return problem_response(status, title, detail, code, headers, **extra)


# Pydantic's words for "the body is not an object", said of a whole JSON body.
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})


def _body_message(err: dict[str, Any], content_type: str) -> str | None:
    """A message a person can act on for an error about the JSON body as a whole (pydantic's
    say "13: JSON decode error", or "Input should be a valid dictionary or object to extract
    fields from" for a body sent as text/plain), or None for any other error."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type")
    if kind == "json_invalid":
        where = f" (at character {loc[1]})" if len(loc) > 1 else ""
        reason = str((err.get("ctx") or {}).get("error") or "it cannot be read")
        return f"is not valid JSON: {reason}{where}"
    if loc != ("body",):
        return None
    media = content_type.split(";")[0].strip().lower()
    is_json = media == "application/json" or media.endswith("+json")
    if kind == "missing":
        return "is empty; send the JSON this call takes"
    if kind in _NOT_AN_OBJECT:
        if not is_json:
            sent = f"'{media}'" if media else "none"
            return f"should be a JSON object sent as Content-Type: application/json (it was {sent})"
        return "should be a JSON object ({...})"
    return None


def _field_errors(exc: RequestValidationError, content_type: str = "") -> list[dict[str, str]]:
    # Never echo the submitted value back (it may be a password or personal data).
    out = []
    for err in exc.errors():
        body = _body_message(err, content_type)
        if body is not None:
            out.append({"field": "body", "message": body})
            continue
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form")]
        out.append({"field": ".".join(loc) or "body", "message": str(err.get("msg", "invalid"))})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if isinstance(exc, Unauthenticated):
            redirect = _signin_redirect(request, exc)
            if redirect is not None:
                return redirect
        headers = None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return respond(request, exc.status, exc.title, exc.detail, exc.code, headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = _field_errors(exc, request.headers.get("content-type", ""))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return respond(request, 422, "Invalid input", detail, "invalid_input", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
        headers = dict(exc.headers) if exc.headers else None
        if wants_html(request):
            title = _HTTP_TITLES.get(exc.status_code, detail)
            friendly = _HTTP_DETAILS.get(exc.status_code, detail)
            page = html_error_page(request, exc.status_code, title, friendly, headers)
            if page is not None:
                return page
        return problem_response(exc.status_code, detail, detail, f"http_{exc.status_code}", headers)

    async def out_of_range(request: Request, exc: Exception) -> Response:
        if not number_out_of_range(exc):
            raise exc  # a real fault: the generic handler below answers 500
        return respond(
            request,
            422,
            "Invalid input",
            f"A number in the request (an id, a limit) is out of range: at most {INT64_MAX}.",
            "number_out_of_range",
        )

    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(DBAPIError, out_of_range)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error(
            "unhandled %s on %s %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        # This handler runs outside the middleware (Starlette's ServerErrorMiddleware), so it
        # adds the request id and the security headers itself.
        rid = _request_id(request)
        headers = {"X-Request-ID": rid} if rid else {}
        detail = (
            "Something went wrong on our side; nothing you sent was lost. "
            "Try again, and contact support with the request id if it persists."
        )
        if wants_html(request):
            from connectx.kit.middleware import CSP

            page = html_error_page(
                request,
                500,
                "Something went wrong",
                detail,
                {**headers, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"},
            )
            if page is not None:
                return page
        extra = {"request_id": rid} if rid else {}
        return problem_response(500, "Internal error", detail, "internal", headers, **extra)
