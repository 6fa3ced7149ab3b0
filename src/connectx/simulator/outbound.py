"""What the platform may send to ``POST /{version}/{phone-number-id}/messages``: the request body
read and checked the way Meta checks it (code 100 for a malformed request or a limit exceeded).

Template parameters are checked against the stored template elsewhere (:mod:`.catalog`); the
window, rates and faults belong to the simulator core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from connectx.simulator.errors import invalid

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
SEND_TYPES = frozenset(
    {*MEDIA_TYPES, "text", "template", "interactive", "reaction", "location", "contacts"}
)
TEXT_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
SECTION_TITLE_MAX = 24
INTERACTIVE_TYPES = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "product",
        "product_list",
        "flow",
        "location_request_message",
        "address_message",
        "call_permission_request",
    }
)
_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)


@dataclass
class Send:
    """A checked request: a message to a user, or a mark-as-read (with a typing indicator)."""

    kind: str  # "message" | "read"
    type: str | None = None
    to: str | None = None  # the phone's digits when addressed by phone
    recipient: str | None = None  # the BSUID when addressed by user id
    input: str = ""
    content: dict[str, Any] = field(default_factory=dict)
    context_id: str | None = None
    callback_data: str | None = None
    read_message_id: str | None = None
    typing: bool = False


def _str(value: Any, where: str, *, required: bool = True, max_len: int | None = None) -> str:
    if value is None or (isinstance(value, str) and value == "" and required):
        if required:
            raise invalid(f"Param {where} is required")
        return ""
    if not isinstance(value, str):
        raise invalid(f"Param {where} must be a string")
    if max_len is not None and len(value) > max_len:
        raise invalid(f"Param {where} must be at most {max_len} characters long")
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"Param {where} is required and must be an object")
    return value


def parse(body: Any) -> Send:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object")
    if body.get("messaging_product") != "whatsapp":
        raise invalid("The parameter messaging_product is required and must be 'whatsapp'")
    if body.get("status") is not None:
        return _read(body)
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise invalid("Param recipient_type must be 'individual'")
    send = Send(kind="message")
    to, recipient = body.get("to"), body.get("recipient")
    if to not in (None, ""):
        raw = _str(to, "to")
        phone = "".join(ch for ch in raw if ch.isdigit())
        if not 7 <= len(phone) <= 15 or set(raw) - set("+0123456789 -()"):
            raise invalid(f"Param to is not a valid WhatsApp phone number: {raw!r}")
        send.to, send.input = phone, raw
    elif recipient not in (None, ""):
        send.recipient = _str(recipient, "recipient", max_len=128)
        send.input = send.recipient
    else:
        raise invalid("Param to (a phone number) or recipient (a user id) is required")
    kind = body.get("type", "text")
    if not isinstance(kind, str) or kind not in SEND_TYPES:
        raise invalid(f"Param type has an unsupported value: {kind!r}")
    send.type = kind
    content = _obj(body.get(kind), kind)
    send.content = content
    if kind == "text":
        _str(content.get("body"), "text['body']", max_len=TEXT_MAX)
        if "preview_url" in content and not isinstance(content["preview_url"], bool):
            raise invalid("Param text['preview_url'] must be a boolean")
    elif kind in MEDIA_TYPES:
        _media(kind, content)
    elif kind == "template":
        _str(content.get("name"), "template['name']", max_len=512)
        language = _obj(content.get("language"), "template['language']")
        _str(language.get("code"), "template['language']['code']")
        components = content.get("components", [])
        if not isinstance(components, list):
            raise invalid("Param template['components'] must be a list")
    elif kind == "interactive":
        _interactive(content)
    elif kind == "reaction":
        _str(content.get("message_id"), "reaction['message_id']")
        _str(content.get("emoji"), "reaction['emoji']", required=False, max_len=16)
    elif kind == "location":
        for key in ("latitude", "longitude"):
            value = content.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise invalid(f"Param location['{key}'] is required")
    elif kind == "contacts":
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            raise invalid("Param contacts must be a non-empty list")
    context = body.get("context")
    if context is not None:
        send.context_id = _str(_obj(context, "context").get("message_id"), "context['message_id']")
    callback = body.get("biz_opaque_callback_data")
    if callback is not None:
        send.callback_data = _str(callback, "biz_opaque_callback_data", max_len=512)
    return send


def _read(body: dict[str, Any]) -> Send:
    if body.get("status") != "read":
        raise invalid("Param status must be 'read'")
    send = Send(kind="read")
    send.read_message_id = _str(body.get("message_id"), "message_id")
    typing = body.get("typing_indicator")
    if typing is not None:
        if _obj(typing, "typing_indicator").get("type") != "text":
            raise invalid("Param typing_indicator['type'] must be 'text'")
        send.typing = True
    return send


def _media(kind: str, content: dict[str, Any]) -> None:
    has_id, has_link = content.get("id") not in (None, ""), content.get("link") not in (None, "")
    if has_id == has_link:
        raise invalid(f"Param {kind} needs exactly one of id (uploaded media) or link")
    if has_id:
        _str(content.get("id"), f"{kind}['id']", max_len=64)
    else:
        link = _str(content.get("link"), f"{kind}['link']", max_len=2048)
        if not _URL.match(link):
            raise invalid(f"Param {kind}['link'] must be an http(s) URL")
    if "caption" in content:
        if kind in ("audio", "sticker"):
            raise invalid(f"Param {kind}['caption'] is not supported for {kind}")
        _str(content.get("caption"), f"{kind}['caption']", required=False, max_len=CAPTION_MAX)
    if "filename" in content:
        if kind != "document":
            raise invalid(f"Param {kind}['filename'] is only supported for documents")
        _str(content.get("filename"), "document['filename']", required=False, max_len=240)


def _interactive(content: dict[str, Any]) -> None:
    kind = content.get("type")
    if kind not in INTERACTIVE_TYPES:
        raise invalid(f"Param interactive['type'] has an unsupported value: {kind!r}")
    body = content.get("body")
    if kind in ("button", "list", "cta_url", "product_list", "flow", "location_request_message"):
        body = _obj(body, "interactive['body']")
    if isinstance(body, dict):
        _str(body.get("text"), "interactive['body']['text']", max_len=INTERACTIVE_BODY_MAX)
    footer = content.get("footer")
    if footer is not None:
        _str(
            _obj(footer, "interactive['footer']").get("text"),
            "interactive['footer']['text']",
            max_len=FOOTER_MAX,
        )
    header = content.get("header")
    if header is not None:
        header = _obj(header, "interactive['header']")
        header_type = header.get("type")
        allowed = ("text",) if kind == "list" else ("text", "image", "video", "document")
        if header_type not in allowed:
            raise invalid(f"Param interactive['header']['type'] must be one of {list(allowed)}")
        if header_type == "text":
            _str(header.get("text"), "interactive['header']['text']", max_len=HEADER_TEXT_MAX)
        else:
            media_type = str(header_type)
            _media(media_type, _obj(header.get(media_type), f"header['{media_type}']"))
    action = _obj(content.get("action"), "interactive['action']")
    if kind == "button":
        _buttons(action)
    elif kind == "list":
        _list(action)


def _buttons(action: dict[str, Any]) -> None:
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise invalid("Param interactive['action']['buttons'] must have 1 to 3 buttons")
    ids: set[str] = set()
    titles: set[str] = set()
    for i, button in enumerate(buttons):
        where = f"interactive['action']['buttons'][{i}]"
        button = _obj(button, where)
        if button.get("type") != "reply":
            raise invalid(f"Param {where}['type'] must be 'reply'")
        reply = _obj(button.get("reply"), f"{where}['reply']")
        button_id = _str(reply.get("id"), f"{where}['reply']['id']", max_len=BUTTON_ID_MAX)
        title = _str(reply.get("title"), f"{where}['reply']['title']", max_len=BUTTON_TITLE_MAX)
        if button_id in ids or title in titles:
            raise invalid("Buttons must have unique ids and titles")
        ids.add(button_id)
        titles.add(title)


def _list(action: dict[str, Any]) -> None:
    _str(action.get("button"), "interactive['action']['button']", max_len=LIST_BUTTON_MAX)
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= LIST_SECTIONS_MAX:
        raise invalid(
            f"Param interactive['action']['sections'] must have 1 to {LIST_SECTIONS_MAX} sections"
        )
    rows_total = 0
    ids: set[str] = set()
    for i, section in enumerate(sections):
        where = f"interactive['action']['sections'][{i}]"
        section = _obj(section, where)
        title = section.get("title")
        if len(sections) > 1 or title is not None:
            _str(title, f"{where}['title']", max_len=SECTION_TITLE_MAX)
        rows = section.get("rows")
        if not isinstance(rows, list) or not rows:
            raise invalid(f"Param {where}['rows'] must have at least one row")
        for j, row in enumerate(rows):
            row_where = f"{where}['rows'][{j}]"
            row = _obj(row, row_where)
            row_id = _str(row.get("id"), f"{row_where}['id']", max_len=ROW_ID_MAX)
            if row_id in ids:
                raise invalid("List rows must have unique ids")
            ids.add(row_id)
            _str(row.get("title"), f"{row_where}['title']", max_len=ROW_TITLE_MAX)
            _str(
                row.get("description"),
                f"{row_where}['description']",
                required=False,
                max_len=ROW_DESCRIPTION_MAX,
            )
        rows_total += len(rows)
    if rows_total > LIST_ROWS_MAX:
        raise invalid(f"A list has at most {LIST_ROWS_MAX} rows in all sections; got {rows_total}")


def summary(send: Send, rendered_template: str | None = None) -> str:
    """What the customer's phone shows for a message (the simulator's page)."""
    c = send.content
    if send.type == "text":
        return str(c.get("body", ""))
    if send.type in MEDIA_TYPES:
        label = c.get("filename") or send.type
        caption = c.get("caption")
        return f"[{label}] {caption}" if caption else f"[{label}]"
    if send.type == "template":
        return rendered_template or f"[template {c.get('name')}]"
    if send.type == "interactive":
        body = c.get("body")
        return str(body.get("text", "")) if isinstance(body, dict) else "[interactive]"
    if send.type == "reaction":
        return str(c.get("emoji") or "")
    if send.type == "location":
        return f"[location] {c.get('name') or ''} {c.get('latitude')},{c.get('longitude')}".strip()
    if send.type == "contacts":
        return "[contact card]"
    return f"[{send.type}]"
