"""Tenant isolation: every route that takes an id, called with a second workspace's credentials
(a signed-in owner's session, and an API key with every scope) against the first workspace's
objects, answers 404, exactly as for an id that does not exist; and nothing of the first
workspace changes.

The walk is generic: it iterates ``app.routes`` and finds every parameter named ``id`` or
``*_id`` in the path, the query or the body (JSON or form), builds the rest of a valid request
from the route's own parameter types, and substitutes the first workspace's object for each id
by parameter name (:data:`VICTIM_IDS`). A route added later is walked automatically; if it takes
an id name the walk does not know, the test fails and says where to teach it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Form, params
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import select

from connectx.db.session import unit_of_work
from connectx.models.account import UserSession
from tests.workspaces.helpers import (
    Caller,
    api_key,
    bearer,
    join,
    member_id,
    new_client,
    owner_of,
)

NOT_THERE = 2_147_480_001  # an id no table holds in a test database
SKIP_METHODS = {"HEAD", "OPTIONS"}

# Plausible values for non-id fields, by name, so requests pass validation and reach the lookup.
SAMPLE_BY_NAME: dict[str, Any] = {
    "role": "agent",
    "scopes": ["read"],
    "email": "walker@example.com",
    "phone": "+971501234567",
    "name": "Walker",
    "address": "1 Walk Street",
    "token": "walk-token",
    "code": "123456",
    "password": "walking-through-routes-42",
    "reason": "tenant isolation walk",
    "kind": "access",
    "until": "2099-01-01T00:00:00Z",
}


@dataclass
class Victim:
    """The first workspace and its objects."""

    owner: Caller
    workspace_id: int
    agent: Caller
    member_id: int
    invitation_id: int
    api_key_id: int
    api_key: str
    session_id: int


# How to find (or make, through the API as the victim's owner) the first workspace's object for
# each id parameter name. A route with an id of another name makes the walk fail until an entry
# is added here.
IdFinder = Callable[[Victim], Awaitable[int]]


async def _workspace(v: Victim) -> int:
    return v.workspace_id


async def _member(v: Victim) -> int:
    return v.member_id


async def _invitation(v: Victim) -> int:
    return v.invitation_id


async def _api_key(v: Victim) -> int:
    return v.api_key_id


async def _session(v: Victim) -> int:
    return v.session_id


def _whatsapp(kind: str) -> IdFinder:
    """A connected number, and a conversation and contact made by a signed webhook."""

    async def find(v: Victim) -> int:
        from tests.whatsapp.support import inbound_for

        return (await inbound_for(v.owner))[kind]

    return find


async def _message(v: Victim) -> int:
    """An inbound message of the first workspace (from the webhook that made its conversation)."""
    conversation_id = await _whatsapp("conversation_id")(v)
    items = (await v.owner.get(f"/api/v1/conversations/{conversation_id}/messages")).json()
    return int(items["items"][0]["id"])


async def _privacy_request(v: Victim) -> int:
    """A privacy request about the first workspace's customer, filed by its owner."""
    contact_id = await _whatsapp("contact_id")(v)
    r = await v.owner.post(
        "/api/v1/privacy/requests",
        json={"contact_id": contact_id, "kind": "access", "identity_checked": True},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def _legal_hold(v: Victim) -> int:
    r = await v.owner.post("/api/v1/workspace/legal-holds", json={"reason": "walk"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def _user(v: Victim) -> int:
    return int(v.agent.user.id)


def _inbox(path: str, body: dict[str, Any]) -> IdFinder:
    """A team, label or canned response of the first workspace, made by its owner."""

    async def find(v: Victim) -> int:
        r = await v.owner.post(path, json=body)
        if r.status_code == 409:  # made already for another route
            listed = (await v.owner.get(path)).json()
            return int(listed[0]["id"])
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    return find


async def _notification(v: Victim) -> int:
    """A notification of the first workspace's agent (a conversation assigned to them)."""
    conversation_id = await _whatsapp("conversation_id")(v)
    await v.owner.client.put(
        f"/api/v1/conversations/{conversation_id}/assignment",
        json={"user_id": None},
        headers=v.owner.h,
    )
    r = await v.owner.client.put(
        f"/api/v1/conversations/{conversation_id}/assignment",
        json={"user_id": v.agent.user.id},
        headers=v.owner.h,
    )
    assert r.status_code == 200, r.text
    return int((await v.agent.get("/api/v1/notifications")).json()["items"][0]["id"])


async def _note(v: Victim) -> int:
    """An internal note on the first workspace's conversation, written by its owner."""
    conversation_id = await _whatsapp("conversation_id")(v)
    r = await v.owner.post(
        f"/api/v1/conversations/{conversation_id}/notes", json={"body": "victim note"}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


VICTIM_IDS: dict[str, IdFinder] = {
    "workspace_id": _workspace,
    "member_id": _member,
    "invitation_id": _invitation,
    "api_key_id": _api_key,
    "session_id": _session,
    "channel_id": _whatsapp("channel_id"),
    "conversation_id": _whatsapp("conversation_id"),
    "contact_id": _whatsapp("contact_id"),
    "message_id": _message,
    "request_id": _privacy_request,
    "hold_id": _legal_hold,
    "user_id": _user,
    "team_id": _inbox("/api/v1/teams", {"name": "Victims"}),
    "label_id": _inbox("/api/v1/labels", {"name": "Victim label"}),
    "canned_id": _inbox(
        "/api/v1/canned-responses", {"shortcut": "victim", "title": "V", "body": "Hello"}
    ),
    "notification_id": _notification,
    "note_id": _note,
}


def is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


def is_integer(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    """Our ids are integers; a text ``*_id`` (Meta's phone_number_id, …) is an outside name."""
    if "$ref" in schema:
        return is_integer(defs.get(schema["$ref"].split("/")[-1], {}), defs)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return any(o.get("type") == "integer" for o in options)


class UnknownId(Exception):
    pass


@dataclass
class Builder:
    """Builds one request for a route, with ids from ``ids`` (name -> value)."""

    ids: dict[str, int]
    used: set[str] = field(default_factory=set)

    def id_for(self, name: str) -> int:
        if name not in self.ids:
            raise UnknownId(name)
        self.used.add(name)
        return self.ids[name]

    def sample(self, schema: dict[str, Any], name: str, defs: dict[str, Any]) -> Any:
        if is_id(name) and is_integer(schema, defs):
            return self.id_for(name)
        if name in SAMPLE_BY_NAME:
            return SAMPLE_BY_NAME[name]
        if "$ref" in schema:
            return self.sample(defs[schema["$ref"].split("/")[-1]], name, defs)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
                return self.sample(options[0], name, defs)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        kind = schema.get("type")
        if kind == "integer":
            return 1
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return False
        if kind == "array":
            return [self.sample(schema.get("items", {}), name, defs)]
        if kind == "object" or "properties" in schema:
            props = schema.get("properties", {})
            wanted = set(schema.get("required", [])) | {
                p for p in props if is_id(p) and is_integer(props[p], defs)
            }
            return {p: self.sample(props[p], p, defs) for p in props if p in wanted}
        if schema.get("format") == "email":
            return SAMPLE_BY_NAME["email"]
        return "walk"

    def for_field(self, f: Any) -> Any:
        annotation = f.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            schema = annotation.model_json_schema()
        else:
            schema = TypeAdapter(annotation).json_schema()
        return self.sample(schema, f.alias, schema.get("$defs", {}))


def _fields(dependant: Any, kind: str) -> list[Any]:
    """``kind`` parameters of a route and of all its dependencies (deduplicated by alias)."""
    out: dict[str, Any] = {}
    stack = [dependant]
    while stack:
        d = stack.pop()
        for f in getattr(d, kind):
            out.setdefault(f.alias, f)
        stack.extend(d.dependencies)
    return list(out.values())


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, Any]
    json: Any = None
    form: dict[str, Any] | None = None


def build(route: Any, method: str, ids: dict[str, int]) -> tuple[Call, set[str]]:
    b = Builder(ids)
    dependant = route.dependant
    path = route.path
    for f in _fields(dependant, "path_params"):
        value = b.for_field(f)
        path = path.replace("{" + f.alias + "}", str(value))
        path = re.sub(r"\{" + re.escape(f.alias) + r":[^}]+\}", str(value), path)
    query = {
        f.alias: b.for_field(f)
        for f in _fields(dependant, "query_params")
        if f.field_info.is_required()  # optional filters (?contact_id=) just narrow lists
    }
    call = Call(method, path, query)
    body = _fields(dependant, "body_params")
    if body:
        if any(isinstance(f.field_info, params.Form) for f in body):
            call.form = {f.alias: b.for_field(f) for f in body}
        elif len(body) == 1 and not getattr(body[0].field_info, "embed", False):
            call.json = b.for_field(body[0])
        else:
            call.json = {f.alias: b.for_field(f) for f in body}
    return call, b.used


async def send(client: httpx.AsyncClient, call: Call, headers: dict[str, str]) -> httpx.Response:
    kw: dict[str, Any] = {
        "params": call.query,
        "headers": {"Accept": "application/json", **headers},
    }
    if call.json is not None:
        kw["json"] = call.json
    if call.form is not None:
        kw["data"] = call.form
    return await client.request(call.method, call.path, **kw)


def shape(response: httpx.Response) -> tuple[str | None, str]:
    """What a refusal says, with ids blanked (the same refusal for any id is no leak)."""
    try:
        text = str(response.json().get("detail"))
    except ValueError:
        text = response.text
    location = response.headers.get("location")
    return (
        re.sub(r"\d+", "#", location) if location else None,
        re.sub(r"\d+", "#", text),
    )


def walked_routes(app: Any) -> list[Any]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        contexts: list[Any] = list(app.routes)
    else:
        contexts = list(iter_route_contexts(app.routes))
    return [
        r for r in contexts if isinstance(r.original_route, APIRoute) or hasattr(r, "dependant")
    ]


async def _victim(app: Any) -> Victim:
    owner, ws_id = await owner_of(app, "Victim Trading", name="Vera Victim")
    agent = await join(app, owner, "agent", name="Val Victim")
    r = await owner.post(
        "/api/v1/workspace/invitations", json={"email": "pending@victim.example", "role": "agent"}
    )
    assert r.status_code == 201, r.text
    key = await api_key(owner, ["read", "write", "admin"], name="victim key")
    async with unit_of_work() as db:
        stmt = select(UserSession.id).where(UserSession.user_id == owner.user.id)
        session_id = (await db.execute(stmt.order_by(UserSession.id.desc()))).scalars().first()
    assert session_id is not None
    return Victim(
        owner=owner,
        workspace_id=ws_id,
        agent=agent,
        member_id=await member_id(owner, agent.user.id),
        invitation_id=int(r.json()["id"]),
        api_key_id=int(key["id"]),
        api_key=key["key"],
        session_id=session_id,
    )


async def _snapshot(victim: Victim) -> dict[str, Any]:
    o = victim.owner
    keys = (await o.get("/api/v1/workspace/api-keys")).json()
    return {
        "workspace": (await o.get("/api/v1/workspace")).json(),
        "members": sorted(
            (m["id"], m["role"]) for m in (await o.get("/api/v1/workspace/members")).json()
        ),
        "invitations": [i["id"] for i in (await o.get("/api/v1/workspace/invitations")).json()],
        "keys": sorted((k["id"], k["revoked_at"]) for k in keys),
        "agent": (await victim.agent.get("/api/v1/me")).json()["workspace"],
    }


async def test_every_route_with_an_id_hides_other_workspaces_objects(app: Any) -> None:
    victim = await _victim(app)
    ids = {name: await find(victim) for name, find in VICTIM_IDS.items()}
    missing = {name: NOT_THERE for name in ids}
    before = await _snapshot(victim)

    intruder, _ = await owner_of(app, "Intruder LLC", name="Ivan Intruder")
    intruder_key = (await api_key(intruder, ["read", "write", "admin"], name="intruder"))["key"]
    # Clients that turn a crash into a 500 response (reported below) instead of raising.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as keyed,
        httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies=intruder.client.cookies
        ) as session,
    ):
        credentials: list[tuple[str, httpx.AsyncClient, dict[str, str]]] = [
            ("session", session, intruder.h),
            ("api key", keyed, bearer(intruder_key)),
        ]
        problems: list[str] = []
        walked: list[str] = []
        for route in walked_routes(app):
            for method in sorted((route.methods or set()) - SKIP_METHODS):
                where = f"{method} {route.path}"
                try:
                    call, used = build(route, method, ids)
                except UnknownId as exc:
                    if is_id(str(exc)):
                        problems.append(
                            f"{where}: the walk does not know the id parameter '{exc}'. Add to "
                            "VICTIM_IDS in tests/test_tenant_isolation.py how to find the first "
                            "workspace's object of that kind."
                        )
                    continue
                if not used:
                    continue  # no id: nothing to leak by id
                walked.append(where)
                control, _ = build(route, method, missing)
                reached_lookup = False
                reported = len(problems)
                for label, client, headers in credentials:
                    got = await send(client, call, headers)
                    baseline = await send(client, control, headers)
                    if got.status_code == 404:
                        reached_lookup = True
                        continue
                    same_refusal = (
                        not got.is_success
                        and baseline.status_code == got.status_code
                        and shape(got) == shape(baseline)
                    )
                    if not same_refusal:
                        problems.append(
                            f"{where} with the second workspace's {label} and the first "
                            f"workspace's ids answered {got.status_code} (an unknown id: "
                            f"{baseline.status_code}): {got.text[:200]}"
                        )
                if not reached_lookup and len(problems) == reported:
                    problems.append(
                        f"{where}: no credential reached the id lookup (never 404); check the "
                        "sample request the walk builds (SAMPLE_BY_NAME)."
                    )

    assert problems == [], "\n".join(problems)
    # The walk really covered the workspace routes (and will cover new ones by itself).
    for expected in (
        "POST /api/v1/workspaces/{workspace_id}/switch",
        "PATCH /api/v1/workspace/members/{member_id}",
        "DELETE /api/v1/workspace/members/{member_id}",
        "DELETE /api/v1/workspace/invitations/{invitation_id}",
        "GET /api/v1/workspace/api-keys/{api_key_id}",
        "DELETE /api/v1/workspace/api-keys/{api_key_id}",
        "POST /api/v1/invitations/{invitation_id}/accept",
        "POST /invitations/{invitation_id}/accept",
        "POST /workspace/switch",
        "POST /workspace/members/{member_id}/remove",
        "POST /workspace/api-keys/{api_key_id}/revoke",
    ):
        assert expected in walked, f"{expected} was not walked"
    # Nothing of the first workspace changed, and its key still works.
    assert await _snapshot(victim) == before
    async with new_client(app) as c:
        assert (await c.get("/api/v1/me", headers=bearer(victim.api_key))).status_code == 200


class _WidgetBody(BaseModel):
    role: str
    widget_id: int


_demo = APIRouter()


@_demo.post("/things/{thing_id}")
async def _thing(thing_id: int, body: _WidgetBody) -> None: ...


@_demo.post("/forms")
async def _form(workspace_id: int = Form(...), note: str = Form("")) -> None: ...


def test_the_walk_builds_requests_and_refuses_unknown_id_names() -> None:
    """The walk itself: ids go where their names say; an unknown id name is reported."""
    routes = {r.path: r for r in _demo.routes if isinstance(r, APIRoute)}
    with pytest.raises(UnknownId):
        build(routes["/things/{thing_id}"], "POST", {"workspace_id": 7})
    call, used = build(routes["/things/{thing_id}"], "POST", {"thing_id": 3, "widget_id": 9})
    assert call.path == "/things/3" and call.json == {"role": "agent", "widget_id": 9}
    assert used == {"thing_id", "widget_id"}
    call, used = build(routes["/forms"], "POST", {"workspace_id": 7})
    assert call.form is not None and call.form["workspace_id"] == 7 and used == {"workspace_id"}
