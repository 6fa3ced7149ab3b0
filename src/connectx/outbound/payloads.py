"""Build the Graph API request body of a send, checking Meta's limits before anything is queued.

Limits (docs/outbound.md, Meta's reference): text ≤ 4096, caption ≤ 1024, ≤ 3 reply buttons with
titles ≤ 20, lists with a button ≤ 20, ≤ 10 sections, ≤ 10 rows in all, row titles ≤ 24 and
descriptions ≤ 72; template parameters must match the template's placeholders (count, names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from connectx.kit.errors import InvalidInput
from connectx.models.template import WaTemplate
from connectx.outbound.schemas import InteractiveIn, SendIn, TemplateIn

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
CAPTION_KINDS = ("image", "video", "document")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
NAMED_PARAM = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass
class Built:
    """The Graph body (without ``to``/``recipient``) and what the message store keeps."""

    graph: dict[str, Any]
    type: str
    body: str | None = None  # text, caption or the template's name
    content: dict[str, Any] = field(default_factory=dict)
    reply_to: str | None = None
    target_wamid: str | None = None


def _len(value: str | None, limit: int, name: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{name} is required.", field=name)
        return value
    if len(value) > limit:
        raise InvalidInput(f"{name} is {len(value)} characters; at most {limit}.", field=name)
    return value


def interactive(spec: InteractiveIn) -> dict[str, Any]:
    out: dict[str, Any] = {"type": spec.type, "body": {"text": _len(spec.body, 1024, "body")}}
    if spec.header:
        out["header"] = {"type": "text", "text": _len(spec.header, 60, "header")}
    if spec.footer:
        out["footer"] = {"text": _len(spec.footer, 60, "footer")}
    if spec.type == "button":
        if not 1 <= len(spec.buttons) <= 3:
            raise InvalidInput("Reply buttons: give 1 to 3 buttons.", field="buttons")
        ids = [b.id for b in spec.buttons]
        if len(set(ids)) != len(ids):
            raise InvalidInput("Reply button ids must differ.", field="buttons")
        out["action"] = {
            "buttons": [
                {
                    "type": "reply",
                    "reply": {
                        "id": _len(b.id, 256, "button id"),
                        "title": _len(b.title, 20, "button title"),
                    },
                }
                for b in spec.buttons
            ]
        }
        return out
    if not spec.sections or len(spec.sections) > 10:
        raise InvalidInput("A list needs 1 to 10 sections.", field="sections")
    rows = [r for s in spec.sections for r in s.rows]
    if not 1 <= len(rows) <= 10:
        raise InvalidInput("A list holds 1 to 10 rows in all.", field="sections")
    if len(spec.sections) > 1 and any(not s.title for s in spec.sections):
        raise InvalidInput("Each section needs a title when there are several.", field="sections")
    out["action"] = {
        "button": _len(spec.button, 20, "button"),
        "sections": [
            {
                **({"title": _len(s.title, 24, "section title")} if s.title else {}),
                "rows": [
                    {
                        "id": _len(r.id, 200, "row id"),
                        "title": _len(r.title, 24, "row title"),
                        **(
                            {"description": _len(r.description, 72, "row description")}
                            if r.description
                            else {}
                        ),
                    }
                    for r in s.rows
                ],
            }
            for s in spec.sections
        ],
    }
    return out


def _placeholders(text: str | None) -> list[str]:
    return PLACEHOLDER.findall(text or "")


def _component(template: WaTemplate, kind: str) -> dict[str, Any] | None:
    for component in template.components or []:
        if str(component.get("type", "")).upper() == kind:
            return dict(component)
    return None


def _params(
    expected: list[str],
    given: list[str] | dict[str, str] | None,
    named: bool,
    where: str,
) -> list[dict[str, Any]]:
    given = given if given is not None else ([] if not named else {})
    if named:
        if not isinstance(given, dict):
            raise InvalidInput(
                f"Template {where} parameters are named: give an object {{name: value}}.",
                field=where,
            )
        missing = [n for n in expected if n not in given]
        extra = [n for n in given if n not in expected]
        if missing or extra:
            raise InvalidInput(
                f"Template {where} expects parameters {expected}; "
                f"missing {missing}, unknown {extra}.",
                field=where,
            )
        out = []
        for name in expected:
            _len(given[name], 1024, f"{where} parameter {name}")
            out.append({"type": "text", "parameter_name": name, "text": given[name]})
        return out
    if not isinstance(given, list):
        raise InvalidInput(f"Template {where} parameters are positional: give a list.", field=where)
    if len(given) != len(expected):
        raise InvalidInput(
            f"Template {where} expects {len(expected)} parameters, got {len(given)}.",
            field=where,
        )
    for i, value in enumerate(given, 1):
        _len(value, 1024, f"{where} parameter {i}")
        if "\n" in value or "\t" in value or "    " in value:
            raise InvalidInput(
                f"Template {where} parameter {i} may not hold new lines, tabs or 4 spaces.",
                field=where,
            )
    return [{"type": "text", "text": v} for v in given]


def template(spec: TemplateIn, tpl: WaTemplate, header_media_id: str | None) -> dict[str, Any]:
    """Check ``spec`` against the stored template and build Meta's template object."""
    named = tpl.parameter_format.upper() == "NAMED"
    components: list[dict[str, Any]] = []
    header = _component(tpl, "HEADER")
    if header is not None:
        fmt = str(header.get("format", "TEXT")).upper()
        if fmt == "TEXT":
            expected = _placeholders(header.get("text"))
            if expected:
                params = _params(expected, spec.header_text, named, "header")
                components.append({"type": "header", "parameters": params})
            elif spec.header_text:
                raise InvalidInput("This template's header takes no parameters.", field="header")
        elif fmt in ("IMAGE", "VIDEO", "DOCUMENT"):
            if not header_media_id:
                raise InvalidInput(
                    f"This template's header is a {fmt.lower()}: give header_media.",
                    field="header_media",
                )
            kind = fmt.lower()
            components.append(
                {"type": "header", "parameters": [{"type": kind, kind: {"id": header_media_id}}]}
            )
    elif spec.header_text or spec.header_media:
        raise InvalidInput("This template has no header.", field="header")
    body = _component(tpl, "BODY")
    expected = _placeholders(body.get("text") if body else None)
    if expected:
        components.append(
            {"type": "body", "parameters": _params(expected, spec.body, named, "body")}
        )
    elif spec.body:
        raise InvalidInput("This template's body takes no parameters.", field="body")
    buttons = (_component(tpl, "BUTTONS") or {}).get("buttons", [])
    given = {b.index: b for b in spec.buttons}
    for index, button in enumerate(buttons):
        kind = str(button.get("type", "")).upper()
        needs = kind == "URL" and bool(_placeholders(button.get("url")))
        b = given.pop(index, None)
        if needs and b is None:
            raise InvalidInput(
                f"Template button {index} (a URL) needs its parameter.", field="buttons"
            )
        if b is None:
            continue
        if kind == "URL" and not needs:
            raise InvalidInput(f"Template button {index} takes no parameter.", field="buttons")
        param = (
            {"type": "text", "text": _len(b.parameter, 2000, "button parameter")}
            if kind == "URL"
            else {"type": "payload", "payload": _len(b.parameter, 128, "button parameter")}
        )
        components.append(
            {"type": "button", "sub_type": b.sub_type, "index": str(index), "parameters": [param]}
        )
    if given:
        raise InvalidInput(f"This template has no button {sorted(given)[0]}.", field="buttons")
    out: dict[str, Any] = {"name": tpl.name, "language": {"code": tpl.language}}
    if components:
        out["components"] = components
    return out


def build(
    spec: SendIn,
    *,
    media_id: str | None = None,
    tpl: WaTemplate | None = None,
) -> Built:
    """The Graph body for ``spec`` (media already uploaded: ``media_id``)."""
    kind = spec.type
    graph: dict[str, Any] = {"type": kind}
    built = Built(graph=graph, type=kind)
    if spec.reply_to:
        graph["context"] = {"message_id": spec.reply_to}
        built.reply_to = spec.reply_to
    if kind == "text":
        text = _len(spec.text, 4096, "text")
        graph["text"] = {"body": text, "preview_url": spec.preview_url}
        built.body = text
    elif kind in MEDIA_KINDS:
        if spec.media is None or not media_id:
            raise InvalidInput(f"A {kind} message needs media (id or data_b64).", field="media")
        obj: dict[str, Any] = {"id": media_id}
        if spec.media.caption:
            if kind not in CAPTION_KINDS:
                raise InvalidInput(f"A {kind} message has no caption.", field="caption")
            obj["caption"] = _len(spec.media.caption, 1024, "caption")
            built.body = spec.media.caption
        if kind == "document" and spec.media.filename:
            obj["filename"] = _len(spec.media.filename, 240, "filename")
        graph[kind] = obj
        built.content = {"media_id": media_id}
    elif kind == "interactive":
        if spec.interactive is None:
            raise InvalidInput("An interactive message needs 'interactive'.", field="interactive")
        graph["interactive"] = interactive(spec.interactive)
        built.body = spec.interactive.body
        built.content = {"interactive": graph["interactive"]}
    elif kind == "reaction":
        if spec.reaction is None:
            raise InvalidInput("A reaction needs 'reaction'.", field="reaction")
        if len(spec.reaction.emoji) > 8:
            raise InvalidInput('A reaction is one emoji (or "" to remove).', field="emoji")
        graph["reaction"] = {
            "message_id": spec.reaction.message_id,
            "emoji": spec.reaction.emoji,
        }
        built.target_wamid = spec.reaction.message_id
        built.content = {"emoji": spec.reaction.emoji}
    elif kind == "template":
        if spec.template is None or tpl is None:
            raise InvalidInput("A template message needs 'template'.", field="template")
        graph["template"] = template(spec.template, tpl, media_id)
        built.body = tpl.name
        built.content = {"template": graph["template"], "category": tpl.category}
    return built
