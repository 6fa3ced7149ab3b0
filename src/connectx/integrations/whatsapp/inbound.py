"""Inbound messages, normalised: one shape for every type Meta documents, and a safe fallback.

Known types are read into a few indexed fields (type, media reference, reply/forward context,
the message a reaction/edit/revoke targets) plus ``body`` (the text a person reads) and
``content`` (structured details: location, shared contacts, interactive replies, order,
referral, system notice...). Unknown types become ``unsupported`` with their original type name
kept; the raw JSON is always kept as well.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectx.integrations.whatsapp.schemas import (
    MEDIA_REF_SIZE,
    WAMID_SIZE,
    ContactEntry,
    Identity,
    Profile,
    arr,
    contact_entries,
    first_error,
    ident,
    match_contact,
    merge_identity,
    obj,
    phone_of,
    text,
    timestamp,
)

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
KNOWN_TYPES = frozenset(
    (
        "text",
        *MEDIA_TYPES,
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "order",
        "system",
        "unsupported",
        "edit",
        "revoke",
    )
)
NOT_CUSTOMER_INITIATED = frozenset({"system"})  # do not open the 24-hour window


@dataclass
class Content:
    """What a message says, independent of its envelope (also used for the body of an edit)."""

    type: str
    body: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    media_id: str | None = None
    media_mime_type: str | None = None
    media_sha256: str | None = None


@dataclass
class InboundMessage:
    wamid: str
    type: str
    sent_at: datetime | None
    sender: Identity
    profile: Profile
    content: Content
    raw: dict[str, Any]
    reply_to_wamid: str | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False
    target_wamid: str | None = None  # reaction, edit, revoke
    reaction: str | None = None  # the emoji; None when a reaction is removed
    edit: Content | None = None
    system: dict[str, Any] = field(default_factory=dict)

    @property
    def opens_window(self) -> bool:
        return self.type not in NOT_CUSTOMER_INITIATED


def messages(value: dict[str, Any]) -> tuple[list[InboundMessage], int]:
    """The messages of a ``messages`` change, and how many had no id and were skipped."""
    found = arr(value.get("messages"))
    if not found:  # (a status callback: its contacts[] names the recipient, read elsewhere)
        return [], 0
    entries = contact_entries(value)
    out: list[InboundMessage] = []
    skipped = 0
    for raw in found:
        raw = obj(raw)
        message = parse_message(raw, entries)
        if message is None:
            skipped += 1
        else:
            out.append(message)
    return out, skipped


def parse_message(raw: dict[str, Any], entries: list[ContactEntry]) -> InboundMessage | None:
    wamid = ident(raw.get("id"), WAMID_SIZE)
    if wamid is None:  # (none, or too long for any stored id)
        return None
    sender = Identity(phone_of(raw.get("from")), text(raw.get("from_user_id")))
    entry = match_contact(entries, sender)
    original_type = text(raw.get("type")) or "unknown"
    kind = original_type if original_type in KNOWN_TYPES else "unsupported"
    message = InboundMessage(
        wamid=wamid,
        type=kind,
        sent_at=timestamp(raw.get("timestamp")),
        sender=merge_identity(sender, entry),
        profile=entry.profile if entry else Profile(),
        content=read_content(raw, kind, original_type),
        raw=raw,
    )
    context = obj(raw.get("context"))
    message.reply_to_wamid = ident(context.get("id"), WAMID_SIZE)
    message.forwarded = context.get("forwarded") is True
    message.frequently_forwarded = context.get("frequently_forwarded") is True
    if message.frequently_forwarded:
        message.forwarded = True
    if context.get("referred_product"):
        message.content.details["referred_product"] = obj(context.get("referred_product"))
    if raw.get("referral"):
        message.content.details["referral"] = obj(raw.get("referral"))
    if kind == "reaction":
        reaction = obj(raw.get("reaction"))
        message.target_wamid = ident(reaction.get("message_id"), WAMID_SIZE)
        message.reaction = text(reaction.get("emoji"))
    elif kind == "edit":
        edit = obj(raw.get("edit"))
        message.target_wamid = ident(edit.get("original_message_id"), WAMID_SIZE)
        inner = obj(edit.get("message"))
        inner_type = text(inner.get("type")) or "text"
        message.edit = read_content(
            inner, inner_type if inner_type in KNOWN_TYPES else "unsupported", inner_type
        )
        message.content = message.edit
        message.content.type = "edit"
    elif kind == "revoke":
        revoke = obj(raw.get("revoke"))
        message.target_wamid = ident(revoke.get("original_message_id"), WAMID_SIZE)
    elif kind == "system":
        message.system = obj(raw.get("system"))
    return message


def read_content(raw: dict[str, Any], kind: str, original_type: str) -> Content:
    payload = obj(raw.get(original_type)) if original_type else {}
    content = Content(type=kind)
    details = content.details
    if kind == "text":
        content.body = _str(payload.get("body"))
    elif kind in MEDIA_TYPES:
        content.media_id = ident(payload.get("id"), MEDIA_REF_SIZE)
        content.media_mime_type = ident(payload.get("mime_type"), MEDIA_REF_SIZE)
        content.media_sha256 = ident(payload.get("sha256"), MEDIA_REF_SIZE)
        content.body = _str(payload.get("caption"))
        for key in ("filename", "voice", "animated"):
            if key in payload:
                details[key] = payload[key]
    elif kind == "location":
        details["location"] = {
            key: payload.get(key)
            for key in ("latitude", "longitude", "name", "address", "url")
            if key in payload
        }
        content.body = _str(payload.get("name")) or _str(payload.get("address"))
    elif kind == "contacts":
        details["contacts"] = arr(raw.get("contacts"))
    elif kind == "interactive":
        details["interactive"] = _interactive(payload)
        content.body = details["interactive"].get("title") or details["interactive"].get("body")
    elif kind == "button":
        details["button"] = {"payload": payload.get("payload"), "text": payload.get("text")}
        content.body = _str(payload.get("text"))
    elif kind == "reaction":
        details["emoji"] = text(payload.get("emoji"))
    elif kind == "order":
        details["order"] = {
            "catalog_id": payload.get("catalog_id"),
            "text": payload.get("text"),
            "product_items": arr(payload.get("product_items")),
        }
        content.body = _str(payload.get("text"))
    elif kind == "system":
        details["system"] = dict(payload)
        content.body = _str(payload.get("body"))
    elif kind == "unsupported":
        if original_type != "unsupported":
            details["original_type"] = original_type
            if payload:
                details[original_type] = payload
        code, title = first_error(raw.get("errors"))
        if code is not None or title is not None:
            details["error"] = {"code": code, "title": title}
    return content


def _interactive(payload: dict[str, Any]) -> dict[str, Any]:
    kind = text(payload.get("type")) or "unknown"
    reply = obj(payload.get(kind))
    out: dict[str, Any] = {"type": kind}
    for key in ("id", "title", "description", "name", "body"):
        if key in reply:
            out[key] = reply[key]
    if "response_json" in reply:
        response = reply["response_json"]
        if isinstance(response, str):
            with contextlib.suppress(ValueError):
                response = json.loads(response)
        out["response"] = response
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None
