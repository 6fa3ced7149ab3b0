"""What the thread shows for each stored message: a display model built from
:class:`connectx.messages.service.MessageView` (already decrypted), with no database access.

Reactions, edits and revokes are stored as messages of their own (docs/whatsapp-inbound.md);
the thread folds them into the message they name: the customer's reaction is on the target's
``reaction``, ours are outbound ``reaction`` rows; an edit has already replaced the target's text
(``edited_at``); a revoke has erased it (``revoked_at``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from markupsafe import Markup

from connectx.kit.linkify import linkify
from connectx.kit.numbers import is_digits
from connectx.messages.service import MessageView
from connectx.outbound.service import holds_withheld

MEDIA_LABELS = {
    "image": "Photo",
    "video": "Video",
    "audio": "Audio",
    "document": "Document",
    "sticker": "Sticker",
}
EFFECT_TYPES = frozenset({"reaction", "edit", "revoke"})
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})

# Meta's error codes a person can act on by sending again later (rate limits, Meta trouble).
RETRYABLE = frozenset({130429, 131000, 131016, 131056, 131048, 131049, 131052, 2})
# What to do instead, where sending the same message again cannot work.
HINTS = {
    131047: "The 24-hour window is closed: send an approved template instead.",
    131026: "WhatsApp could not deliver to this number (not on WhatsApp, or an old app).",
    131050: "The customer stopped marketing messages from this business.",
    131051: "WhatsApp does not support this message type.",
    131053: "Meta could not process the attachment; try another file.",
    132000: "The template's parameters do not match it; check them and send again.",
    132001: "The template does not exist (in this language) or is not approved yet.",
    132015: "The template is paused for low quality.",
    132016: "The template is disabled.",
    190: "Meta refused the number's access token; an admin must reconnect the number.",
    130429: "Meta's rate limit for this number was hit; sending again later works.",
    131056: "Too many messages to this customer in a short time; wait a little.",
}

TICKS = {
    "queued": ("pending", "Queued"),
    "accepted": ("pending", "Sending"),
    "sending": ("pending", "Sending"),
    "sent": ("sent", "Sent"),
    "delivered": ("delivered", "Delivered"),
    "read": ("read", "Read"),
    "played": ("played", "Played"),
    "failed": ("failed", "Not delivered"),
}

# A privacy-request notice whose one-time link or code was withheld from the stored text
# (outbound.service.withhold): sending the stored text again would give the customer the
# placeholder, and the secret itself is gone, so it is never sent again from here.
WITHHELD_HINT = (
    "It held a one-time link or code from the customer's privacy request, which only they may "
    "have and which is not kept, so it cannot be sent again: a new one comes with a new "
    "request (the customer asks again in this chat or on the privacy center)."
)

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


@dataclass
class Failure:
    code: int | None
    title: str
    hint: str | None
    retryable: bool
    withheld: bool = False  # held a secret the stored text no longer has (WITHHELD_HINT)


@dataclass
class Media:
    url: str
    state: str | None  # inbound: pending | stored | rejected | failed; outbound: None
    mime_type: str | None
    filename: str | None = None
    voice: bool = False
    animated: bool = False

    kind: str = "document"

    @property
    def viewable(self) -> bool:
        return self.state == "stored"

    @property
    def label(self) -> str:
        if self.kind == "audio" and self.voice:
            return "Voice message"
        if self.kind == "sticker" and self.animated:
            return "Animated sticker"
        return MEDIA_LABELS.get(self.kind, "File")


@dataclass
class Bubble:
    id: int
    wamid: str
    direction: str
    type: str
    sent_at: datetime
    status: str
    text: Markup = field(default_factory=Markup)
    tick: str | None = None  # css key: pending | sent | delivered | read | played | failed
    tick_label: str | None = None
    failure: Failure | None = None
    media: Media | None = None
    details: dict[str, Any] = field(default_factory=dict)
    reaction: str | None = None  # the customer's reaction to this message
    our_reactions: list[str] = field(default_factory=list)
    quote: Quote | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False
    edited: bool = False
    deleted: bool = False
    template: TemplateShown | None = None

    @property
    def mine(self) -> bool:
        return self.direction == "out"

    @property
    def dom_id(self) -> str:
        return f"m-{self.id}"


@dataclass
class Quote:
    found: bool
    author: str  # "You" | "Customer"
    snippet: str


@dataclass
class TemplateShown:
    name: str
    category: str | None
    text: str  # the body with its parameters filled in (or the name when unknown)


def _failure(view: MessageView) -> Failure | None:
    if view.status != "failed" and not view.error:
        return None
    err = view.error or {}
    code = err.get("code")
    title = err.get("title") or "Meta did not say why."
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    if view.direction == "out" and holds_withheld(view.body):
        return Failure(code, str(title), WITHHELD_HINT, retryable=False, withheld=True)
    retryable = view.direction == "out" and view.type in ("text", *MEDIA_TYPES)
    retryable = retryable and (code is None or code in RETRYABLE)
    return Failure(code=code, title=str(title), hint=HINTS.get(code or -1), retryable=retryable)


def _media(view: MessageView) -> Media | None:
    if view.type not in MEDIA_TYPES or view.revoked_at is not None:
        return None
    media = view.media or {}
    details = view.content or {}
    return Media(
        url=f"/api/v1/messages/{view.id}/media",
        state=media.get("state") if view.direction == "in" else None,
        mime_type=media.get("mime_type"),
        filename=details.get("filename"),
        voice=bool(details.get("voice")) or view.type == "voice",
        animated=bool(details.get("animated")),
        kind=view.type,
    )


def _snippet(view: MessageView | None) -> str:
    if view is None:
        return ""
    if view.revoked_at is not None:
        return "Deleted message"
    if view.body:
        return view.body[:120]
    return {
        "image": "Photo",
        "video": "Video",
        "audio": "Voice message" if (view.content or {}).get("voice") else "Audio",
        "document": "Document",
        "sticker": "Sticker",
        "location": "Location",
        "contacts": "Contact card",
        "order": "Order",
        "template": "Template",
    }.get(view.type, view.type.capitalize())


def fill_template(text: str, params: list[str] | dict[str, str]) -> str:
    """``text`` with ``{{1}}`` / ``{{name}}`` replaced by the parameters given (blanks stay as
    ``{{…}}`` so a preview shows what is still missing)."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if isinstance(params, dict):
            value = params.get(key)
        else:
            index = int(key) - 1 if is_digits(key) else -1
            value = params[index] if 0 <= index < len(params) else None
        return value if value else match.group(0)

    return _PLACEHOLDER.sub(sub, text)


def _template(view: MessageView, known: dict[tuple[str, str], list[Any]]) -> TemplateShown | None:
    content = view.content or {}
    tpl = content.get("template")
    if view.type != "template" or not isinstance(tpl, dict):
        return None
    name = str(tpl.get("name") or view.body or "template")
    language = str((tpl.get("language") or {}).get("code") or "")
    params: list[str] | dict[str, str] = []
    for component in tpl.get("components") or []:
        if str(component.get("type")) == "body":
            values = component.get("parameters") or []
            if any(p.get("parameter_name") for p in values):
                params = {str(p.get("parameter_name")): str(p.get("text", "")) for p in values}
            else:
                params = [str(p.get("text", "")) for p in values]
    body = ""
    for component in known.get((name, language), []):
        if str(component.get("type", "")).upper() == "BODY":
            body = fill_template(str(component.get("text") or ""), params)
    return TemplateShown(name=name, category=content.get("category"), text=body or name)


def _order_total(order: dict[str, Any]) -> tuple[str, str] | None:
    total = Decimal(0)
    currency = ""
    for item in order.get("product_items") or []:
        try:
            total += Decimal(str(item.get("item_price"))) * int(item.get("quantity") or 1)
        except (InvalidOperation, TypeError, ValueError):
            return None
        currency = str(item.get("currency") or currency)
    return (f"{total:.2f}", currency) if order.get("product_items") else None


def bubbles(
    views: list[MessageView],
    templates: dict[tuple[str, str], list[Any]] | None = None,
    earlier: dict[str, MessageView] | None = None,
) -> list[Bubble]:
    """Display models of ``views`` (oldest first), effects folded into their targets.

    ``earlier`` gives quoted messages that are not on this page (by wamid)."""
    by_wamid = {v.wamid: v for v in views}
    if earlier:
        by_wamid = {**earlier, **by_wamid}
    ours: dict[str, list[str]] = {}
    for v in views:
        if v.type == "reaction" and v.direction == "out" and v.target_wamid:
            emoji = (v.content or {}).get("emoji")
            if emoji and v.status != "failed":
                ours.setdefault(v.target_wamid, []).append(str(emoji))
            elif not emoji:
                ours.pop(v.target_wamid, None)  # our reaction removed
    out: list[Bubble] = []
    for v in views:
        if v.type in EFFECT_TYPES:
            continue
        tick, label = TICKS.get(v.status, (None, None)) if v.direction == "out" else (None, None)
        bubble = Bubble(
            id=v.id,
            wamid=v.wamid,
            direction=v.direction,
            type=v.type,
            sent_at=v.sent_at,
            status=v.status,
            text=linkify(v.body) if v.type != "template" else Markup(""),
            tick=tick,
            tick_label=label,
            failure=_failure(v),
            media=_media(v),
            details=dict(v.content or {}),
            reaction=v.reaction,
            our_reactions=ours.get(v.wamid, [])[-1:],
            forwarded=v.forwarded,
            frequently_forwarded=v.frequently_forwarded,
            edited=v.edited_at is not None and v.revoked_at is None,
            deleted=v.revoked_at is not None,
            template=_template(v, templates or {}),
        )
        if v.type == "order":
            bubble.details["total"] = _order_total(bubble.details.get("order") or {})
        if v.reply_to_wamid:
            quoted = by_wamid.get(v.reply_to_wamid)
            bubble.quote = Quote(
                found=quoted is not None,
                author=("You" if quoted.direction == "out" else "Customer") if quoted else "",
                snippet=_snippet(quoted) if quoted else "An earlier message",
            )
        out.append(bubble)
    return out


def preview(view: MessageView | None) -> str:
    """One line for the conversation list (the newest message)."""
    return _snippet(view)


# -- the template picker ---------------------------------------------------------------------


@dataclass
class TemplateButton:
    index: int
    type: str  # URL | QUICK_REPLY | PHONE_NUMBER | COPY_CODE | ...
    text: str
    url: str | None
    needs_param: bool


@dataclass
class TemplateForm:
    """The fields a person fills in to send one template, and its text for the preview."""

    name: str
    language: str
    category: str
    named: bool
    header_format: str | None
    header_text: str | None
    header_params: list[str]
    body_text: str
    body_params: list[str]
    footer: str | None
    buttons: list[TemplateButton]

    @property
    def key(self) -> str:
        return f"{self.name}|{self.language}"


def _keys(text: str | None) -> list[str]:
    seen: list[str] = []
    for key in _PLACEHOLDER.findall(text or ""):
        if key not in seen:
            seen.append(key)
    return seen


def template_form(tpl: WaTemplateLike) -> TemplateForm:
    header = body = footer = None
    buttons: list[TemplateButton] = []
    for component in tpl.components or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header = component
        elif kind == "BODY":
            body = component
        elif kind == "FOOTER":
            footer = component
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                url = button.get("url")
                buttons.append(
                    TemplateButton(
                        index=index,
                        type=str(button.get("type", "")).upper(),
                        text=str(button.get("text") or ""),
                        url=str(url) if url else None,
                        needs_param=str(button.get("type", "")).upper() == "URL"
                        and bool(_keys(url)),
                    )
                )
    header_format = str(header.get("format", "TEXT")).upper() if header else None
    header_text = str(header.get("text") or "") if header and header_format == "TEXT" else None
    return TemplateForm(
        name=tpl.name,
        language=tpl.language,
        category=tpl.category,
        named=tpl.parameter_format.upper() == "NAMED",
        header_format=header_format,
        header_text=header_text,
        header_params=_keys(header_text),
        body_text=str(body.get("text") or "") if body else "",
        body_params=_keys(str(body.get("text") or "") if body else ""),
        footer=str(footer.get("text") or "") if footer else None,
        buttons=buttons,
    )


def param_values(keys: list[str], given: dict[str, str], named: bool) -> list[str] | dict[str, str]:
    if named:
        return {k: given.get(k, "") for k in keys}
    return [given.get(k, "") for k in keys]


@dataclass
class TemplatePreview:
    header: str | None
    body: str
    footer: str | None
    buttons: list[str]
    missing: list[str]


def template_preview(
    form: TemplateForm,
    header: dict[str, str],
    body: dict[str, str],
    buttons: dict[int, str],
) -> TemplatePreview:
    """The message as the customer will see it; ``missing`` names the empty fields."""
    missing = [f"header {{{{{k}}}}}" for k in form.header_params if not header.get(k)]
    missing += [f"body {{{{{k}}}}}" for k in form.body_params if not body.get(k)]
    missing += [
        f"button “{b.text}”" for b in form.buttons if b.needs_param and not buttons.get(b.index)
    ]
    return TemplatePreview(
        header=(
            fill_template(form.header_text, param_values(form.header_params, header, form.named))
            if form.header_text
            else (f"[{form.header_format.lower()}]" if form.header_format else None)
        ),
        body=fill_template(form.body_text, param_values(form.body_params, body, form.named)),
        footer=form.footer,
        buttons=[b.text for b in form.buttons],
        missing=missing,
    )


class WaTemplateLike(Protocol):
    name: str
    language: str
    category: str
    parameter_format: str
    components: list[Any]
