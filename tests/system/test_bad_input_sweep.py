"""Bad input never gives a 500: every route of the app (the JSON API and the HTML pages and form
posts) is driven by a signed-in workspace owner with malformed requests generated from the
app's own OpenAPI schema (tests/support/malformed.py), and none may answer 5xx or raise.

Real rows exist for the ids in paths (a number, a conversation, a label, ...), so a request that
gets past validation reaches the service and the database. Routes that end the session or
delete what others need run last; the owner signs in again whenever a request ended the
session, and the test checks that the sweep mostly ran signed in (it would prove little
otherwise)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx

from tests.inbox.support import customers_write, workspace_with_number
from tests.support.factories import signed_in
from tests.support.malformed import Operation, Request, full_schema, operations, requests_for
from tests.workspaces.helpers import Caller, new_client, owner_of

# Routes that sign out, delete or revoke: last, so the rest sees the rows and the session.
_LAST = ("signout", "delete", "remove", "revoke", "disconnect", "switch", "2fa")


def _order(op: Operation) -> tuple[int, str, str]:
    destructive = op.method == "DELETE" or any(w in op.path for w in _LAST)
    return (int(destructive), op.path, op.method)


async def _ids(owner: Caller, workspace_id: int) -> dict[str, str]:
    """Ids of real rows for the path parameters."""
    channel = await workspace_with_number(owner)
    (conversation,) = await customers_write(owner, ("Sweep Person", "16505550199"))
    conv = (await owner.get(f"/api/v1/conversations/{conversation}")).json()
    messages = (await owner.get(f"/api/v1/conversations/{conversation}/messages")).json()
    label = (await owner.post("/api/v1/labels", json={"name": "Sweep"})).json()
    team = (await owner.post("/api/v1/teams", json={"name": "Sweepers"})).json()
    canned = (
        await owner.post("/api/v1/canned-responses", json={"shortcut": "hi", "text": "Hello"})
    ).json()
    members = (await owner.get("/api/v1/workspace/members")).json()
    return {
        "channel_id": str(channel),
        "conversation_id": str(conversation),
        "contact_id": str(conv["contact"]["id"]),
        "message_id": str(messages["items"][0]["id"]),
        "label_id": str(label.get("id", 1)),
        "team_id": str(team.get("id", 1)),
        "canned_id": str(canned.get("id", 1)),
        "member_id": str(members[0]["id"]) if isinstance(members, list) else "1",
        "user_id": str(owner.user.id),
        "workspace_id": str(workspace_id),
    }


@dataclass
class Answer:
    status: int
    body: bytes


async def _call(app: Any, req: Request, cookie: str, csrf: str) -> Answer:
    """``req`` straight to the ASGI app, as a server would pass it (a third of the time of an
    httpx client on the app, which is most of 4,000 requests' time). An exception the app lets
    out after its 500 (Starlette re-raises it for the server to log) is that 500."""
    headers = {"cookie": cookie, "x-csrf-token": csrf, **req.headers}
    body = b""
    if req.content is not None:
        body = req.content
    elif req.form is not None:
        body = urlencode(req.form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif req.json_body is not None or req.case.startswith("body "):
        body = json.dumps(req.json_body).encode()  # \ud800: a lone surrogate, escaped
        headers["content-type"] = "application/json"
    raw_path = quote(req.path, safe="/%").encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": req.method,
        "scheme": "http",
        "path": unquote(raw_path.decode()),  # as uvicorn decodes it
        "raw_path": raw_path,
        "root_path": "",
        "query_string": urlencode(req.params).encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"testserver"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    sent_body = False
    answer = Answer(0, b"")

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if sent_body:
            await asyncio.Event().wait()  # the client stays connected
        sent_body = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    try:
        await app(scope, receive, send)
    except Exception as exc:
        if answer.status < 500:
            raise AssertionError(f"the app raised {exc!r} after a {answer.status}") from exc
    return answer


def _cookie(client: httpx.AsyncClient) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


async def test_no_route_answers_malformed_input_with_a_5xx(app: Any) -> None:
    owner, workspace_id = await owner_of(app, email="sweep-owner@example.com")
    ids = await _ids(owner, workspace_id)
    cookie = _cookie(owner.client)
    ops = sorted(operations(full_schema(app)), key=_order)
    assert len(ops) > 250
    failures: list[str] = []
    sent = signed_out = 0
    started = time.monotonic()
    for op in ops:
        for req in requests_for(op, ids):
            try:
                r = await asyncio.wait_for(
                    _call(app, req, cookie, owner.csrf), 0.5 if op.streams else None
                )
            except TimeoutError:  # an event stream that began: good input after all
                continue
            except Exception as exc:
                failures.append(f"{req.method} {req.path} [{req.case}] raised {exc!r}")
                continue
            sent += 1
            signed_out += r.status == 401
            if r.status >= 500:
                failures.append(
                    f"{req.method} {req.path} [{req.case}] -> {r.status} {r.body[:120]!r}"
                )
        me = Request("GET", "/api/v1/me")
        if _order(op)[0] and (await _call(app, me, cookie, "")).status == 401:
            owner.client = new_client(app)  # the route ended the session: sign in again
            owner.csrf = await signed_in(owner.client, owner.email)
            cookie = _cookie(owner.client)
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures)
    assert sent > 3000
    assert signed_out < sent // 20, f"{signed_out} of {sent} were refused as signed out"
    print(f"{sent} malformed requests over {len(ops)} operations in {elapsed:.1f} s")
