"""Malformed requests for every route of the app, generated from its OpenAPI schema.

The schema is built over *all* routes (the HTML pages and form posts too, which the published
``/openapi.json`` leaves out), so path, query, JSON and form fields are all known. For every
operation there is a baseline request (valid-looking values for every field) and, from it,
requests that spoil one thing at a time: a field missing, of the wrong type, out of range,
over-long, or with unicode a database refuses (NUL, a lone surrogate); and whole bodies that are
not JSON, of the wrong content type, nested too deep or of the wrong shape. Deterministic: the
same app gives the same requests in the same order.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

BIG = 2**70
LONG = "x" * 20_000
NUL = "a\x00b"
SURROGATE = "a\ud800b"  # a lone surrogate: valid JSON (\ud800), not encodable as UTF-8
ODD = "\u202eevil\u200b\ufeff\U0001f600e\u0301"  # RTL override, zero-width, emoji, combining
DEEP = "[" * 100_000 + "]" * 100_000

# What a query, path or form field (all strings on the wire) gets instead of its value: a number
# or a flag gets text and numbers out of range, text gets NUL and odd unicode, and length.
BAD_NUMBER = ["abc", "-1", str(BIG), "", "\u00b2"]  # "²".isdigit() is True
BAD_TEXT = ["", NUL + ODD, LONG]


def bad_text(schema: dict[str, Any]) -> list[str]:
    kind = _concrete(schema).get("type")
    return BAD_NUMBER if kind in ("integer", "number", "boolean") else BAD_TEXT


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    form: dict[str, str] | None = None
    content: bytes | None = None
    case: str = "baseline"


@dataclass
class Operation:
    method: str
    path: str  # the template, "/api/v1/labels/{label_id}"
    path_params: list[str]
    query: dict[str, dict[str, Any]]  # name -> schema
    required_query: set[str]
    body_kind: str | None  # "json", "form" or None
    body_schema: dict[str, Any] | None
    streams: bool = False  # answers with an endless event stream when the request is good


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every API route, also those of included routers (FastAPI keeps them nested)."""
    out: list[APIRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out += api_routes(inner.routes)
        elif isinstance(route, APIRoute):
            out.append(route)
    return out


def full_schema(app: Any) -> dict[str, Any]:
    """The OpenAPI schema of every route, pages included."""
    routes = []
    for route in api_routes(app.router.routes):
        shown = copy.copy(route)
        shown.include_in_schema = True
        routes.append(shown)
    return get_openapi(title="all", version="0", routes=routes)


def operations(schema: dict[str, Any]) -> list[Operation]:
    ops = []
    components = schema.get("components", {}).get("schemas", {})
    for path, methods in sorted(schema["paths"].items()):
        for method, op in sorted(methods.items()):
            params = op.get("parameters", [])
            path_params = [p["name"] for p in params if p["in"] == "path"]
            query = {p["name"]: p.get("schema", {}) for p in params if p["in"] == "query"}
            required = {p["name"] for p in params if p["in"] == "query" and p.get("required")}
            kind, body = None, None
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                kind, body = "json", content["application/json"].get("schema", {})
            elif content:
                kind = "form"
                body = next(iter(content.values())).get("schema", {})
            if body is not None:
                body = resolve(body, components)
            elif method != "get" and not path.startswith("/api/"):
                kind, body = (
                    "form",
                    {"type": "object"},
                )  # a page's form read with ``await request.form()``
            streams = any(
                "text/event-stream" in r.get("content", {}) for r in op["responses"].values()
            )
            ops.append(
                Operation(method.upper(), path, path_params, query, required, kind, body, streams)
            )
    return ops


def resolve(schema: Any, components: dict[str, Any]) -> Any:
    """``schema`` with every ``$ref`` replaced by what it points at."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return resolve(components[schema["$ref"].rsplit("/", 1)[1]], components)
        return {k: resolve(v, components) for k, v in schema.items()}
    if isinstance(schema, list):
        return [resolve(v, components) for v in schema]
    return schema


def _concrete(schema: dict[str, Any]) -> dict[str, Any]:
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            if options:
                return {**schema, **_concrete(options[0]), key: None}
    return schema


def sample(schema: dict[str, Any], name: str = "") -> Any:
    """A plausible valid value for ``schema`` (``name`` helps with untyped strings)."""
    s = _concrete(schema)
    if "const" in s:
        return s["const"]
    if s.get("enum"):
        return s["enum"][0]
    if s.get("default") is not None:
        return s["default"]
    if s.get("examples"):
        return s["examples"][0]
    kind = s.get("type")
    if kind == "integer":
        return max(int(s.get("minimum", 1)), 1)
    if kind == "number":
        return float(s.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "array":
        return [sample(s.get("items", {}), name)] * int(s.get("minItems", 0))
    if kind == "object" or "properties" in s:
        props = s.get("properties", {})
        return {k: sample(v, k) for k, v in props.items()}
    fmt = s.get("format", "")
    if fmt == "email" or "email" in name:
        return "sweep@example.com"
    if fmt == "date-time":
        return "2027-01-01T00:00:00Z"
    if fmt == "date":
        return "2027-01-01"
    if "phone" in name:
        return "+447911123456"
    text = "sample"
    return text[: s["maxLength"]] if "maxLength" in s else text.ljust(s.get("minLength", 0), "a")


def bad_json_values(schema: dict[str, Any]) -> list[tuple[str, Any]]:
    """Wrong-typed, out-of-range and hostile values for a JSON field of ``schema``."""
    kind = _concrete(schema).get("type")
    common: list[tuple[str, Any]] = [("null", None), ("object", {"a": [1]})]
    if kind in ("integer", "number"):
        return [
            *common,
            ("text", "abc"),
            ("huge", BIG),
            ("negative", -(2**63) - 1),
            ("float", 1.5),
            ("bool", True),
        ]
    if kind == "array":
        return [*common, ("text", "abc"), ("list of nulls", [None]), ("huge list", [1] * 10_000)]
    if kind == "boolean":
        return [*common, ("text", "maybe"), ("number", 7)]
    if kind == "object":
        return [*common[:1], ("text", "abc"), ("list", [1])]
    return [
        *common,
        ("number", 12345),
        ("list", ["a"]),
        ("NUL", NUL),
        ("surrogate", SURROGATE),
        ("odd unicode", ODD),
        ("over-long", LONG),
    ]


def _fill(template: str, path_values: dict[str, str]) -> str:
    return re.sub(r"\{([^}:]+)(:path)?\}", lambda m: path_values.get(m.group(1), "1"), template)


def requests_for(op: Operation, ids: dict[str, str]) -> Iterator[Request]:
    """The baseline request of ``op`` and each malformed variant of it."""
    path_values = {p: ids.get(p, "1") for p in op.path_params}
    query = {k: str(sample(v, k)) for k, v in op.query.items() if k in op.required_query}
    body = sample(op.body_schema) if op.body_schema is not None else None

    def make(case: str, **kw: Any) -> Request:
        path = _fill(op.path, kw.pop("path_values", path_values))
        req = Request(op.method, path, params=kw.pop("params", dict(query)), case=case)
        if "content" in kw:
            req.content, req.headers = kw.pop("content"), kw.pop("headers")
        elif op.body_kind == "json":
            req.json_body = kw.pop("json_body", body)
        elif op.body_kind == "form":
            req.form = {k: _form_text(v) for k, v in kw.pop("form", body or {}).items()}
        return req

    yield make("baseline")
    for name in op.path_params:
        for value in ["abc", "-1", str(BIG), "%00%ff" + ODD, "x" * 2000]:
            yield make(f"path {name}={value[:12]!r}", path_values={**path_values, name: value})
    for name, schema in op.query.items():
        for value in bad_text(schema):
            yield make(f"query {name}={value[:12]!r}", params={**query, name: value})
    if op.body_kind == "json":
        yield from _json_cases(op, body, make)
    elif op.body_kind == "form":
        yield from _form_cases(op, body or {}, make)


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _json_cases(op: Operation, body: Any, make: Any) -> Iterator[Request]:
    ct = {"content-type": "application/json"}
    yield make("invalid JSON", content=b'{"a": ', headers=ct)
    yield make("not UTF-8", content=b'{"a": "\xff\xfe"}', headers=ct)
    yield make(
        "text/plain", content=json.dumps(body).encode(), headers={"content-type": "text/plain"}
    )
    yield make(
        "form instead of JSON",
        content=b"a=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    yield make("empty body", content=b"", headers=ct)
    yield make("nested too deep", content=DEEP.encode(), headers=ct)
    for shape in (None, [], "text", 7):
        yield make(f"body {json.dumps(shape)}", json_body=shape)
    if not isinstance(body, dict):
        return
    props = _concrete(op.body_schema or {}).get("properties", {})
    for name, schema in props.items():
        rest = {k: v for k, v in body.items() if k != name}
        yield make(f"json without {name}", json_body=rest)
        for label, value in bad_json_values(schema):
            yield make(f"json {name}: {label}", json_body={**body, name: value})


def _form_cases(op: Operation, body: dict[str, Any], make: Any) -> Iterator[Request]:
    yield make(
        "form: not form-encoded",
        content=b"\xff\xfe=\x00",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    yield make(
        "form: multipart without boundary",
        content=b"--x\r\n",
        headers={"content-type": "multipart/form-data"},
    )
    yield make(
        "form: JSON instead", content=b'{"a": 1}', headers={"content-type": "application/json"}
    )
    odd_keys = {"button.\u00b2": "x", "header.\x00": "y", f"body.{BIG}": "z", "body.-1": "w"}
    yield make("form: odd keys", form={**body, **odd_keys})
    props = _concrete(op.body_schema or {}).get("properties", {})
    for name in body:
        rest = {k: v for k, v in body.items() if k != name}
        yield make(f"form without {name}", form=rest)
        for value in bad_text(props.get(name, {})):
            yield make(f"form {name}={value[:12]!r}", form={**body, name: value})
