"""Which route answers a request: every route answers its own paths (none is hidden behind an
earlier one, so the order routers are included in is free to follow the traffic), and the
inbox's pages, where agents spend the day, are matched first."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Match

from tests.support.malformed import api_routes


def _sample(path: str) -> str:
    return re.sub(r"\{[^}:]+(:path)?\}", lambda m: "a/b" if m.group(1) else "7", path)


def _answering(app: Any, method: str, path: str) -> tuple[Any, int]:
    """The route the app's router picks for ``method path``, and how many candidates it
    tried at the top (an included router counts as one)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    tried = 0
    for candidate in app.router.routes:
        tried += 1
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            while hasattr(candidate, "_match"):  # an included router: which of its routes
                _, _, candidate, _ = candidate._match(scope)
            return candidate, tried
    return None, tried


def test_every_route_answers_its_own_paths(app: Any) -> None:
    hidden = []
    routes = api_routes(app.router.routes)
    assert len(routes) > 150
    for route in routes:
        for method in sorted(route.methods or ()):
            path = _sample(route.path)
            found, _ = _answering(app, method, path)
            endpoint = getattr(found, "endpoint", found)
            if endpoint is not route.endpoint:
                hidden.append(f"{method} {route.path} -> {getattr(found, 'path', found)}")
    assert hidden == []


def test_inbox_pages_are_matched_first(app: Any) -> None:
    """Matching a path costs every route tried before it (~10 µs each with FastAPI's included
    routers: 2-3 ms of a thread page when the inbox came after ~180 other routes)."""
    for path in ("/inbox", "/inbox/c/7", "/inbox/list", "/inbox/bell", "/inbox/c/7/assign"):
        method = "POST" if path.endswith("assign") else "GET"
        found, tried = _answering(app, method, path)
        assert found is not None and found.path.startswith("/inbox"), path
        assert tried <= 4, (path, tried)  # after FastAPI's /openapi.json and /redoc
