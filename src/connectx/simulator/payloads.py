"""Webhook bodies shaped like Meta's: the envelope, the contacts block, inbound messages of every
documented type, status callbacks with pricing, preferences and template updates.

Changes are built one at a time (``{"field", "value"}`` with the WABA id beside them) and
:func:`envelope` puts one or many of them into a POST body, merging the ``messages`` changes of
one number the way Meta batches them.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

OBJECT = "whatsapp_business_account"

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
INBOUND_TYPES = (
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


@dataclass
class Update:
    """One change addressed to a WABA, sent by an app (whose secret signs the POST)."""

    app_id: str
    waba_id: str
    field: str
    value: dict[str, Any]

    @property
    def size(self) -> int:
        """How many updates Meta would count in it (for batch limits)."""
        if self.field == "messages":
            n = len(self.value.get("messages", ())) + len(self.value.get("statuses", ()))
            return n + len(self.value.get("errors", ())) or 1
        return 1


def new_wamid() -> str:
    return "wamid." + base64.b64encode(b"\x1c\x18\x0b" + secrets.token_bytes(30)).decode()


def encode(payload: dict[str, Any], *, escape_slashes: bool = True) -> bytes:
    """Compact JSON with non-ASCII as ``\\uXXXX`` and, like Meta, ``/`` as ``\\/``: a receiver
    that re-serialises before checking the signature will fail, as it would with Meta."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    if escape_slashes:
        text = text.replace("/", "\\/")  # "/" only ever occurs inside JSON strings
    return text.encode("ascii")


def digits(display_phone_number: str) -> str:
    return "".join(ch for ch in display_phone_number if ch.isdigit())


def metadata(display_phone_number: str, phone_number_id: str) -> dict[str, str]:
    return {
        "display_phone_number": digits(display_phone_number),
        "phone_number_id": phone_number_id,
    }


def contact_block(
    *,
    wa_id: str | None,
    user_id: str | None,
    name: str | None,
    username: str | None,
    hide_phone: bool,
    hidden_as: str,
) -> dict[str, Any]:
    profile: dict[str, Any] = {}
    if name:
        profile["name"] = name
    if username:
        profile["username"] = username
    block: dict[str, Any] = {"profile": profile}
    if hide_phone or not wa_id:
        if hidden_as == "empty":
            block["wa_id"] = ""
    else:
        block["wa_id"] = wa_id
    if user_id:
        block["user_id"] = user_id
    return block


def sender_fields(
    wa_id: str | None, user_id: str | None, hide_phone: bool, hidden_as: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if hide_phone or not wa_id:
        if hidden_as == "empty":
            out["from"] = ""
    else:
        out["from"] = wa_id
    if user_id:
        out["from_user_id"] = user_id
    return out


def recipient_fields(
    wa_id: str | None, user_id: str | None, hide_phone: bool, hidden_as: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if hide_phone or not wa_id:
        if hidden_as == "empty":
            out["recipient_id"] = ""
    else:
        out["recipient_id"] = wa_id
    if user_id:
        out["recipient_user_id"] = user_id
    return out


def messages_value(
    meta: dict[str, str],
    *,
    contacts: list[dict[str, Any]] | None = None,
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": dict(meta)}
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    if errors:
        value["errors"] = errors
    return value


def pricing(category: str, kind: str, billable: bool) -> dict[str, Any]:
    return {"billable": billable, "pricing_model": "PMP", "category": category, "type": kind}


def conversation(conversation_id: str, category: str, expires: int) -> dict[str, Any]:
    """The pre-v24.0 ``conversation`` object of status callbacks."""
    return {
        "id": conversation_id,
        "expiration_timestamp": str(expires),
        "origin": {"type": category},
    }


def envelope(updates: list[Update]) -> dict[str, Any]:
    """One POST body for ``updates`` (all of one app): an entry per WABA; ``messages`` changes
    of the same number merged into one value (contacts listed once)."""
    entries: dict[str, list[dict[str, Any]]] = {}
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for update in updates:
        changes = entries.setdefault(update.waba_id, [])
        number = str(update.value.get("metadata", {}).get("phone_number_id", ""))
        key = (update.waba_id, number)
        if update.field == "messages" and number and key in merged:
            target = merged[key]
            for name in ("messages", "statuses", "errors"):
                if update.value.get(name):
                    target.setdefault(name, []).extend(update.value[name])
            known = {json.dumps(c, sort_keys=True) for c in target.get("contacts", [])}
            for contact in update.value.get("contacts", []):
                if json.dumps(contact, sort_keys=True) not in known:
                    target.setdefault("contacts", []).append(contact)
            continue
        value = json.loads(json.dumps(update.value))  # a private copy, safe to merge into
        if update.field == "messages" and number:
            merged[key] = value
        changes.append({"value": value, "field": update.field})
    return {
        "object": OBJECT,
        "entry": [{"id": waba, "changes": changes} for waba, changes in entries.items()],
    }


def template_status_value(
    template_id: str, name: str, language: str, event: str, reason: str | None, category: str
) -> dict[str, Any]:
    return {
        "event": event,
        "message_template_id": int(template_id),
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason or "NONE",
        "message_template_category": category,
    }


def preference_value(
    meta: dict[str, str],
    contact: dict[str, Any],
    *,
    wa_id: str | None,
    user_id: str | None,
    value: str,
    timestamp: int,
) -> dict[str, Any]:
    preference: dict[str, Any] = {
        "detail": "User requested to stop marketing messages"
        if value == "stop"
        else "User requested to resume marketing messages",
        "category": "marketing_messages",
        "value": value,
        "timestamp": timestamp,
    }
    if wa_id is not None:
        preference["wa_id"] = wa_id
    if user_id:
        preference["user_id"] = user_id
    return {
        "messaging_product": "whatsapp",
        "metadata": dict(meta),
        "contacts": [contact],
        "user_preferences": [preference],
    }


def unsupported_errors() -> list[dict[str, Any]]:
    return [
        {
            "code": 131051,
            "title": "Message type unknown",
            "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."},
        }
    ]


def default_referral() -> dict[str, Any]:
    return {
        "source_url": "https://fb.me/3cr4Wqqkv",
        "source_id": "120226305854810726",
        "source_type": "ad",
        "headline": "Winter sale",
        "body": "20% off everything this week",
        "media_type": "image",
        "image_url": "https://example.com/ad.jpg",
        "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ" + secrets.token_hex(4),
    }
