"""Errors: browsers asking for a page get a friendly HTML page with the same status and message;
the API, htmx and JSON clients keep problem+json; pages that need a sign-in redirect to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse

from connectx.accounts.principal import Principal, require_user
from connectx.kit.errors import Conflict, TooManyRequests
from connectx.web.flash import set_flash
from connectx.web.navigation import safe_next, signin_url
from tests.web.html import parse

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"accept": "application/json"}
HTMX = {"accept": "*/*", "hx-request": "true", "hx-current-url": "http://testserver/page?x=1"}


@pytest.fixture
async def probe(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with a few routes that fail on purpose (as views of other domains would),
    and a client that receives 500 responses instead of re-raising the exception."""

    async def needs_signin(principal: Principal = Depends(require_user)) -> dict[str, str]:
        return {"actor": principal.actor}

    async def conflict() -> None:
        raise Conflict("That name is taken; choose another.")

    async def slow_down() -> None:
        raise TooManyRequests("Too many sign-in attempts. Wait, then try again.", 300)

    async def count(n: int) -> dict[str, int]:
        return {"n": n}

    async def crash() -> None:
        raise RuntimeError("boom")

    async def flashing() -> RedirectResponse:
        response = RedirectResponse("/", status_code=303)
        set_flash(response, "Your changes were saved.")
        return response

    for path, endpoint in [
        ("/probe/needs-signin", needs_signin),
        ("/api/v1/probe/needs-signin", needs_signin),
        ("/probe/conflict", conflict),
        ("/api/v1/probe/conflict", conflict),
        ("/probe/slow-down", slow_down),
        ("/probe/count", count),
        ("/probe/crash", crash),
        ("/probe/flash", flashing),
    ]:
        app.add_api_route(path, endpoint, methods=["GET", "POST"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _html(resp: httpx.Response) -> Any:
    assert resp.headers["content-type"].startswith("text/html"), resp.headers["content-type"]
    return parse(resp.text)


async def test_unknown_page_is_a_friendly_html_404_for_browsers(client: Any) -> None:
    resp = await client.get("/no/such/page", headers=BROWSER)
    assert resp.status_code == 404
    page = _html(resp)
    assert page.find("h1").text == "Page not found"
    assert "no page at this address" in page.find("p", **{"class": "error-detail"}).text
    assert page.find("a", href="/").text  # the layout, with a way home
    assert page.find("nav", **{"aria-label": "Main"})
    assert resp.headers["x-request-id"] in resp.text
    assert "script-src 'self'" in resp.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/no/such/page", JSON),
        ("/no/such/page", {"accept": "*/*"}),
        ("/no/such/page", HTMX),
        ("/api/v1/no-such-thing", BROWSER),
    ],
    ids=["json-client", "any-client", "htmx", "api-from-browser"],
)
async def test_api_json_and_htmx_keep_problem_json(
    client: Any, path: str, headers: dict[str, str]
) -> None:
    resp = await client.get(path, headers=headers)
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 404


async def test_domain_error_keeps_status_and_message_on_the_html_page(probe: Any) -> None:
    resp = await probe.post("/probe/conflict", headers=BROWSER)
    assert resp.status_code == 409
    page = _html(resp)
    assert page.find("h1").text == "Conflict"
    assert page.find("p", **{"class": "error-detail"}).text == "That name is taken; choose another."

    api = await probe.post("/api/v1/probe/conflict", headers=BROWSER)
    assert api.status_code == 409
    assert api.json()["detail"] == "That name is taken; choose another."


async def test_too_many_requests_page_says_when_to_retry(probe: Any) -> None:
    resp = await probe.get("/probe/slow-down", headers=BROWSER)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "300"
    assert "try again in about 5 minutes" in _html(resp).text


async def test_bad_input_is_a_422_page_naming_the_field(probe: Any) -> None:
    resp = await probe.get("/probe/count?n=lots", headers=BROWSER)
    assert resp.status_code == 422
    page = _html(resp)
    assert page.find("h1").text == "Invalid input"
    errors = page.find("article", **{"class": "error-page narrow"}).find("ul")
    assert "n" in [s.text for s in errors.find_all("strong")]
    assert "lots" not in resp.text  # the submitted value is never echoed
    api = await probe.get("/probe/count?n=lots", headers=JSON)
    assert api.status_code == 422
    assert api.json()["errors"][0]["field"] == "n"


async def test_crash_is_a_500_page_with_request_id_and_headers(probe: Any) -> None:
    resp = await probe.get("/probe/crash", headers=BROWSER)
    assert resp.status_code == 500
    page = _html(resp)
    assert page.find("h1").text == "Something went wrong"
    assert "boom" not in resp.text
    rid = resp.headers["x-request-id"]
    assert rid and rid in resp.text
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]

    api = await probe.get("/probe/crash", headers=JSON)
    assert api.status_code == 500
    body = api.json()
    assert body["request_id"] == api.headers["x-request-id"]
    assert "boom" not in api.text


async def test_page_that_needs_signin_redirects_browsers_to_signin(probe: Any) -> None:
    resp = await probe.get("/probe/needs-signin?tab=keys", headers=BROWSER)
    assert resp.status_code == 303
    location = urlsplit(resp.headers["location"])
    assert location.path == "/signin"
    assert parse_qs(location.query) == {"next": ["/probe/needs-signin?tab=keys"]}


async def test_form_post_without_signin_returns_to_the_page_of_the_form(probe: Any) -> None:
    headers = {**BROWSER, "referer": "http://testserver/workspace/members"}
    resp = await probe.post("/probe/needs-signin", headers=headers)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/signin?next=%2Fworkspace%2Fmembers"
    foreign = {**BROWSER, "referer": "https://elsewhere.example/x"}
    resp = await probe.post("/probe/needs-signin", headers=foreign)
    assert resp.headers["location"] == "/signin"


async def test_htmx_request_without_signin_gets_hx_redirect(probe: Any) -> None:
    resp = await probe.post("/probe/needs-signin", headers=HTMX)
    assert resp.status_code == 401
    assert resp.headers["hx-redirect"] == "/signin?next=%2Fpage%3Fx%3D1"
    assert resp.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("headers", [JSON, {"accept": "*/*"}])
async def test_api_and_programs_get_401_problem_not_a_redirect(
    probe: Any, headers: dict[str, str]
) -> None:
    for path in ("/probe/needs-signin", "/api/v1/probe/needs-signin"):
        resp = await probe.get(path, headers=headers)
        assert resp.status_code == 401
        assert resp.headers["content-type"].startswith("application/problem+json")
    resp = await probe.get("/api/v1/probe/needs-signin", headers=BROWSER)
    assert resp.status_code == 401


async def test_flash_message_shows_once(probe: Any) -> None:
    resp = await probe.get("/probe/flash", headers=BROWSER)
    assert resp.status_code == 303
    cookie = probe.cookies["cx_flash"]
    page = await probe.get("/", headers=BROWSER)
    assert _html(page).find("p", role="status").text.startswith("Your changes were saved.")
    assert "cx_flash" not in probe.cookies  # cleared by the page that showed it
    again = await probe.get("/", headers=BROWSER)
    assert "Your changes were saved." not in again.text
    payload, _, _sig = cookie.rpartition(".")
    probe.cookies.set("cx_flash", f"{payload}.AAAA")
    forged = await probe.get("/", headers=BROWSER)
    assert "Your changes were saved." not in forged.text


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("/workspace/members?page=2", "/workspace/members?page=2"),
        ("/account", "/account"),
        (None, "/workspace"),
        ("", "/workspace"),
        ("https://evil.example/", "/workspace"),
        ("//evil.example/", "/workspace"),
        ("/\\evil.example", "/workspace"),
        ("javascript:alert(1)", "/workspace"),
        ("/ok\r\nSet-Cookie: x=1", "/workspace"),
        ("/signin?next=/signin", "/workspace"),
    ],
)
def test_safe_next_only_allows_local_paths(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_signin_url_drops_unsafe_targets() -> None:
    assert signin_url("/workspace") == "/signin?next=%2Fworkspace"
    assert signin_url("https://evil.example/") == "/signin"
    assert signin_url(None) == "/signin"
