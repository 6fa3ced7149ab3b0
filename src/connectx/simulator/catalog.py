"""Message templates per WhatsApp Business Account: listing with cursors, creation, deletion,
and the parameter check Meta does when a template is sent (132000-series errors)."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from connectx.simulator.errors import GraphError, invalid
from connectx.simulator.settings import TEMPLATE_NAME, TemplateConfig

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
STATUSES = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "IN_APPEAL", "DELETED")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
BODY_MAX = 1024
PAGE_DEFAULT = 25
PAGE_MAX = 100
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")


def new_template_id() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


@dataclass
class Template:
    id: str
    waba_id: str
    name: str
    language: str
    category: str
    status: str
    components: list[dict[str, Any]]
    parameter_format: str = "POSITIONAL"
    quality_score: str = "GREEN"
    rejected_reason: str = "NONE"
    seq: int = 0

    def as_graph(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
            "quality_score": {"score": self.quality_score},
            "rejected_reason": self.rejected_reason,
        }

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    # -- what a send must carry ------------------------------------------------------------------
    def component(self, kind: str) -> dict[str, Any] | None:
        for c in self.components:
            if str(c.get("type", "")).upper() == kind:
                return c
        return None

    def placeholders(self, kind: str) -> list[str]:
        c = self.component(kind)
        if c is None or not isinstance(c.get("text"), str):
            return []
        seen: list[str] = []
        for name in _PLACEHOLDER.findall(c["text"]):
            if name not in seen:
                seen.append(name)
        return seen

    def url_buttons(self) -> dict[int, int]:
        """Button index -> how many parameters it needs (URL with a variable, copy code)."""
        buttons = (self.component("BUTTONS") or {}).get("buttons") or []
        out: dict[int, int] = {}
        for i, b in enumerate(buttons):
            kind = str(b.get("type", "")).upper()
            variable = kind == "URL" and _PLACEHOLDER.search(str(b.get("url", "")))
            if variable or kind == "COPY_CODE":
                out[i] = 1
        return out


def parameter_format(config_format: str | None, components: list[dict[str, Any]]) -> str:
    if config_format:
        return config_format
    for c in components:
        for name in _PLACEHOLDER.findall(str(c.get("text", ""))):
            if not name.isdigit():
                return "NAMED"
    return "POSITIONAL"


def from_config(config: TemplateConfig, seq: int) -> Template:
    assert config.waba_id is not None
    return Template(
        id=config.id or new_template_id(),
        waba_id=config.waba_id,
        name=config.name,
        language=config.language,
        category=config.category,
        status=config.status,
        components=config.components,
        parameter_format=parameter_format(config.parameter_format, config.components),
        seq=seq,
    )


def validate_new(body: dict[str, Any]) -> dict[str, Any]:
    """A template creation request, checked; the fields to create it with."""
    name = body.get("name")
    if not isinstance(name, str) or not TEMPLATE_NAME.match(name):
        raise invalid("Param name must be lowercase letters, digits and underscores (max 512)")
    language = body.get("language")
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        raise invalid("Param language must be a language code like en_US")
    category = body.get("category")
    if not isinstance(category, str) or category.upper() not in CATEGORIES:
        raise invalid(f"Param category must be one of {', '.join(CATEGORIES)}")
    components = body.get("components")
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise invalid("Param components must be a list of objects")
    kinds = [str(c.get("type", "")).upper() for c in components]
    if kinds.count("BODY") != 1:
        raise invalid("Param components must include exactly one BODY")
    for c in components:
        kind = str(c.get("type", "")).upper()
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            raise invalid(f"Param components has an unknown component type {c.get('type')!r}")
        if kind == "BODY" and (not isinstance(c.get("text"), str) or not c["text"].strip()):
            raise invalid("Param components BODY needs text")
        if kind == "BODY" and len(c["text"]) > BODY_MAX:
            raise invalid(f"Param components BODY text is at most {BODY_MAX} characters")
    fmt = body.get("parameter_format")
    if fmt is not None and fmt not in ("POSITIONAL", "NAMED"):
        raise invalid("Param parameter_format must be POSITIONAL or NAMED")
    return {
        "name": name,
        "language": language,
        "category": category.upper(),
        "components": components,
        "parameter_format": parameter_format(fmt, components),
    }


def _params(component: dict[str, Any], where: str) -> list[dict[str, Any]]:
    params = component.get("parameters", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise invalid(f"Param template['components'][{where}]['parameters'] must be a list")
    return params


def _text_of(param: dict[str, Any]) -> str:
    kind = param.get("type", "text")
    if kind == "text":
        value = param.get("text")
        if not isinstance(value, str) or value == "":
            raise GraphError(132000, "Parameter of type text is missing the text value")
        if "\n" in value or "\t" in value or "     " in value:
            raise GraphError(
                100,
                "Param text cannot have new-line/tab characters or more than 4 consecutive spaces",
            )
        return value
    if kind == "currency":
        return str((param.get("currency") or {}).get("fallback_value", ""))
    if kind == "date_time":
        return str((param.get("date_time") or {}).get("fallback_value", ""))
    return f"[{kind}]"


def _mismatch(where: str, given: int, expected: int) -> GraphError:
    return GraphError(
        132000,
        f"{where}: number of localizable_params ({given}) does not match the expected number "
        f"of params ({expected})",
    )


def check_send(template: Template, given: list[Any]) -> str:
    """Check a send's ``components`` against the template; the body text as the customer
    reads it."""
    sent: dict[str, dict[str, Any]] = {}
    buttons: dict[int, dict[str, Any]] = {}
    for i, c in enumerate(given):
        if not isinstance(c, dict):
            raise invalid(f"Param template['components'][{i}] must be an object")
        kind = str(c.get("type", "")).lower()
        if kind == "button":
            try:
                index = int(c.get("index", -1))
            except (TypeError, ValueError):
                raise invalid(
                    f"Param template['components'][{i}]['index'] must be a number"
                ) from None
            buttons[index] = c
        elif kind in ("header", "body"):
            sent[kind] = c
        else:
            raise invalid(f"Param template['components'][{i}]['type'] {c.get('type')!r}")
    # header
    header = template.component("HEADER")
    header_params = _params(sent["header"], "header") if "header" in sent else []
    if header is not None and str(header.get("format", "TEXT")).upper() in MEDIA_FORMATS:
        fmt = str(header["format"]).lower()
        if len(header_params) != 1:
            raise _mismatch("header", len(header_params), 1)
        param = header_params[0]
        media = param.get(fmt)
        if param.get("type") != fmt or not isinstance(media, dict):
            raise GraphError(
                132012, f"header: parameter of type {param.get('type')!r} given, {fmt} expected"
            )
        if fmt != "location" and not (media.get("id") or media.get("link")):
            raise invalid(f"Param header {fmt} needs an id or a link")
    else:
        expected = template.placeholders("HEADER")
        if len(header_params) != len(expected):
            raise _mismatch("header", len(header_params), len(expected))
        _named(template, header_params, expected, "header")
    # body
    expected_body = template.placeholders("BODY")
    body_params = _params(sent["body"], "body") if "body" in sent else []
    if len(body_params) != len(expected_body):
        raise _mismatch("body", len(body_params), len(expected_body))
    values = _named(template, body_params, expected_body, "body")
    # buttons
    needs = template.url_buttons()
    for index, c in buttons.items():
        params = _params(c, f"button {index}")
        sub_type = str(c.get("sub_type", "")).lower()
        if sub_type in ("url", "copy_code") and len(params) != needs.get(index, 0):
            raise _mismatch(f"button at index {index}", len(params), needs.get(index, 0))
    for index, n in needs.items():
        if index not in buttons:
            raise _mismatch(f"button at index {index}", 0, n)
    text = str((template.component("BODY") or {}).get("text", ""))
    rendered = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
    if len(rendered) > BODY_MAX:
        raise GraphError(
            132005,
            f"The body is {len(rendered)} characters with parameters; the maximum is {BODY_MAX}",
        )
    return rendered


def _named(
    template: Template, params: list[dict[str, Any]], expected: list[str], where: str
) -> dict[str, str]:
    values: dict[str, str] = {}
    if template.parameter_format == "NAMED":
        for p in params:
            name = p.get("parameter_name")
            if name not in expected or name in values:
                raise GraphError(
                    132000,
                    f"{where}: parameter_name {name!r} is missing, unknown or repeated; the "
                    f"template expects {expected}",
                )
            values[str(name)] = _text_of(p)
    else:
        for name, p in zip(expected, params, strict=True):
            values[name] = _text_of(p)
    return values


@dataclass
class Page:
    data: list[dict[str, Any]]
    before: str | None
    after: str | None
    has_next: bool
    has_previous: bool
    extra: dict[str, Any] = field(default_factory=dict)


def cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"cx:{seq}".encode()).decode().rstrip("=")


def uncursor(value: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        prefix, seq = raw.split(":", 1)
        if prefix != "cx":
            raise ValueError
        return int(seq)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Param after/before is not a valid cursor") from None


def paginate(
    templates: list[Template],
    *,
    limit: int,
    after: str | None,
    before: str | None,
    fields: list[str] | None,
) -> Page:
    ordered = sorted(templates, key=lambda t: t.seq)
    if after:
        seq = uncursor(after)
        window = [t for t in ordered if t.seq > seq]
        page = window[:limit]
        has_previous = True
        has_next = len(window) > limit
    elif before:
        seq = uncursor(before)
        window = [t for t in ordered if t.seq < seq]
        page = window[-limit:]
        has_next = True
        has_previous = len(window) > limit
    else:
        page = ordered[:limit]
        has_previous = False
        has_next = len(ordered) > limit
    data = []
    for t in page:
        item = t.as_graph()
        if fields:
            item = {k: v for k, v in item.items() if k in fields or k == "id"}
        data.append(item)
    return Page(
        data=data,
        before=cursor(page[0].seq) if page else None,
        after=cursor(page[-1].seq) if page else None,
        has_next=has_next and bool(page),
        has_previous=has_previous and bool(page),
    )
