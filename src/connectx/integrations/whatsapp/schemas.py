"""The webhook envelope, read tolerantly.

Meta adds fields and message types without notice, sends empty strings where a value is
missing (``from: ""`` for users who hide their number) and batches up to 1,000 updates in one
POST. Nothing here raises on an unexpected shape: a field of the wrong type reads as absent and
the raw JSON is kept beside what we understood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

OBJECT = "whatsapp_business_account"
WAMID_SIZE = 255  # messages.wamid, reply_to_wamid, target_wamid, message_status_events.wamid
MEDIA_REF_SIZE = 128  # messages.media_id, media_mime_type, media_sha256
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # an Integer column (error codes)


def text(value: Any) -> str | None:
    """A non-empty string (numbers accepted), or None for missing, empty or odd values."""
    if type(value) is str:  # nearly always (a few million calls an hour at full intake)
        return value.strip() or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(int(value)) if isinstance(value, int) or value.is_integer() else str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def ident(value: Any, size: int) -> str | None:
    """:func:`text` of an identifier stored in a column of ``size`` characters; None when it is
    longer (no id of Meta's is: a longer one cannot be stored, and cutting it would make it
    another id)."""
    found = text(value)
    return found if found is None or len(found) <= size else None


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def arr(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def timestamp(value: Any) -> datetime | None:
    """Meta's Unix-seconds timestamps (string or number) as aware UTC datetimes."""
    raw = text(value)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    if not 0 < seconds < 32_503_680_000:  # before year 3000
        return None
    return datetime.fromtimestamp(seconds, UTC)


def phone_of(wa_id: Any) -> str | None:
    """A WhatsApp id (the user's number in international digits) as ``+<digits>``.

    For every valid number this is its E.164 form; Meta's id is kept as given even when our
    phone library would not validate it (test numbers), so keys stay stable.
    """
    raw = text(wa_id)
    if raw is None:
        return None
    if raw.isdigit():  # Meta's ids are plain digits
        return f"+{raw}"
    digits = "".join(ch for ch in raw if ch.isdigit())
    return f"+{digits}" if digits else None


@dataclass(frozen=True)
class Identity:
    """How Meta names a WhatsApp user: phone (wa_id) and/or business-scoped user id."""

    phone: str | None = None
    bsuid: str | None = None

    @property
    def known(self) -> bool:
        return bool(self.phone or self.bsuid)


@dataclass(frozen=True)
class Profile:
    name: str | None = None
    username: str | None = None
    parent_bsuid: str | None = None


@dataclass
class ContactEntry:
    identity: Identity
    profile: Profile


@dataclass
class Change:
    """One ``entry[].changes[]`` element."""

    waba_id: str | None
    field: str
    value: dict[str, Any]

    @cached_property  # (asked several times an update while a batch is planned)
    def phone_number_id(self) -> str | None:
        return text(obj(self.value.get("metadata")).get("phone_number_id"))

    @property
    def display_phone_number(self) -> str | None:
        return text(obj(self.value.get("metadata")).get("display_phone_number"))


def changes(payload: Any) -> list[Change]:
    """Every change of every entry, in order. A payload that is not an object yields none."""
    out: list[Change] = []
    for entry in arr(obj(payload).get("entry")):
        entry = obj(entry)
        waba_id = text(entry.get("id"))
        for change in arr(entry.get("changes")):
            change = obj(change)
            name = text(change.get("field")) or "unknown"
            out.append(Change(waba_id, name, obj(change.get("value"))))
    return out


class ContactEntries(list[ContactEntry]):
    """A ``contacts[]`` list with the position of each BSUID and phone's first entry, so matching
    a batch of 1,000 messages to 1,000 entries is not a million comparisons (the processor plans
    an event again in every transaction that continues it)."""

    def first_positions(self) -> tuple[dict[str, int], dict[str, int]]:
        cached: tuple[dict[str, int], dict[str, int]] | None = getattr(self, "_positions", None)
        if cached is None:
            by_bsuid: dict[str, int] = {}
            by_phone: dict[str, int] = {}
            for i, entry in enumerate(self):
                if entry.identity.bsuid:
                    by_bsuid.setdefault(entry.identity.bsuid, i)
                if entry.identity.phone:
                    by_phone.setdefault(entry.identity.phone, i)
            cached = self._positions = (by_bsuid, by_phone)
        return cached


def contact_entries(value: dict[str, Any]) -> ContactEntries:
    out = ContactEntries()
    for raw in arr(value.get("contacts")):
        raw = obj(raw)
        profile = obj(raw.get("profile"))
        out.append(
            ContactEntry(
                Identity(phone_of(raw.get("wa_id")), text(raw.get("user_id"))),
                Profile(
                    text(profile.get("name")),
                    text(profile.get("username")) or text(raw.get("username")),
                    text(raw.get("parent_user_id")),
                ),
            )
        )
    return out


def match_contact(entries: list[ContactEntry], identity: Identity) -> ContactEntry | None:
    """The ``contacts[]`` entry describing ``identity`` (the only one, when there is one)."""
    if isinstance(entries, ContactEntries):  # the first entry naming its BSUID or its phone
        by_bsuid, by_phone = entries.first_positions()
        found = [
            i
            for i in (
                by_bsuid.get(identity.bsuid) if identity.bsuid else None,
                by_phone.get(identity.phone) if identity.phone else None,
            )
            if i is not None
        ]
        if found:
            return entries[min(found)]
    else:
        for entry in entries:
            if identity.bsuid and entry.identity.bsuid == identity.bsuid:
                return entry
            if identity.phone and entry.identity.phone == identity.phone:
                return entry
    if len(entries) == 1 and not (identity.phone and identity.bsuid):
        only = entries[0]
        compatible = (not identity.phone or not only.identity.phone) and (
            not identity.bsuid or not only.identity.bsuid
        )
        return only if compatible or not identity.known else None
    return None


def merge_identity(primary: Identity, entry: ContactEntry | None) -> Identity:
    if entry is None:
        return primary
    return Identity(primary.phone or entry.identity.phone, primary.bsuid or entry.identity.bsuid)


@dataclass
class StatusUpdate:
    wamid: str
    status: str
    occurred_at: datetime | None
    recipient: Identity
    error_code: int | None = None
    error_title: str | None = None
    pricing: dict[str, Any] | None = None
    conversation: dict[str, Any] | None = None
    # Our ``biz_opaque_callback_data`` echoed back: ties the status to an outbox row even when
    # the sender died before it stored Meta's answer (docs/outbound.md, "Exactly once").
    callback_data: str | None = None


@dataclass
class PreferenceUpdate:
    identity: Identity
    category: str
    value: str
    detail: str | None
    occurred_at: datetime | None
    profile: Profile = field(default_factory=Profile)


def first_error(errors: Any) -> tuple[int | None, str | None]:
    for err in arr(errors):
        err = obj(err)
        code = err.get("code")
        try:
            number = int(code) if code is not None and not isinstance(code, bool) else None
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is not None and not INT32_MIN <= number <= INT32_MAX:
            number = None  # no code of Meta's; the column (an integer) could not hold it
        title = text(err.get("title")) or text(err.get("message"))
        return number, title[:200] if title else None
    return None, None


def statuses(value: dict[str, Any]) -> list[StatusUpdate]:
    out = []
    for raw in arr(value.get("statuses")):
        raw = obj(raw)
        wamid, status = ident(raw.get("id"), WAMID_SIZE), text(raw.get("status"))
        if wamid is None or status is None:
            continue
        code, title = first_error(raw.get("errors"))
        conversation = obj(raw.get("conversation"))
        pricing = obj(raw.get("pricing"))
        out.append(
            StatusUpdate(
                wamid=wamid,
                status=status.lower(),
                occurred_at=timestamp(raw.get("timestamp")),
                recipient=Identity(
                    phone_of(raw.get("recipient_id")), text(raw.get("recipient_user_id"))
                ),
                error_code=code,
                error_title=title,
                pricing=_plain(pricing) or None,
                conversation=_plain(conversation) or None,
                callback_data=_callback(raw.get("biz_opaque_callback_data")),
            )
        )
    return out


def _callback(value: Any) -> str | None:
    found = text(value)
    return found if found and len(found) <= 64 else None  # ours are 32 hex characters


def preferences(value: dict[str, Any]) -> list[PreferenceUpdate]:
    found = arr(value.get("user_preferences"))
    if not found:
        return []
    entries = contact_entries(value)
    out = []
    for raw in found:
        raw = obj(raw)
        identity = Identity(phone_of(raw.get("wa_id")), text(raw.get("user_id")))
        entry = match_contact(entries, identity)
        category, pref = text(raw.get("category")), text(raw.get("value"))
        if category is None or pref is None:
            continue
        out.append(
            PreferenceUpdate(
                identity=merge_identity(identity, entry),
                category=category,
                value=pref.lower(),
                detail=text(raw.get("detail")),
                occurred_at=timestamp(raw.get("timestamp")),
                profile=entry.profile if entry else Profile(),
            )
        )
    return out


_SCALARS = (str, int, float, bool)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """Scalars and objects of scalars (ids, categories, flags): what billing and reports need;
    no lists. The scalars first, then the objects. (One pass: read for every status callback.)"""
    scalars: dict[str, Any] = {}
    nested: dict[str, Any] | None = None
    for k, v in value.items():
        if v is None or isinstance(v, _SCALARS):
            scalars[k] = v
        elif isinstance(v, dict):
            if nested is None:
                nested = {}
            nested[k] = _plain(v)
    return scalars | nested if nested else scalars
