"""A workspace's privacy-request settings: its handle on the privacy center and the WhatsApp
keywords that start a request (English and Arabic by default, editable per workspace)."""

from __future__ import annotations

import re
import time
import unicodedata
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.kit import clock
from connectx.kit.errors import InvalidInput, NotFound
from connectx.models.data_request import PrivacySettings
from connectx.privacy.requests import repository as repo

# A keyword with kind None opens the menu of rights; one with a kind files that right directly.
DEFAULT_KEYWORDS: list[dict[str, Any]] = [
    {"text": "DELETE MY DATA", "kind": "erasure"},
    {"text": "ERASE MY DATA", "kind": "erasure"},
    {"text": "MY DATA", "kind": None},
    {"text": "احذف بياناتي", "kind": "erasure"},
    {"text": "امسح بياناتي", "kind": "erasure"},
    {"text": "بياناتي", "kind": None},
]
MAX_KEYWORDS = 20
MAX_KEYWORD = 40
_HANDLE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$")
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
# Alef with hamza or madda written as a plain alef (people type either).
_ALEFS = str.maketrans({"\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627"})
CACHE_TTL_S = 30.0
_cache: dict[int, tuple[float, list[dict[str, Any]]]] = {}


# ASCII text (most messages) in one translate: NFKC leaves it as it is, casefold is lower(),
# and what is neither alphanumeric nor a space becomes a space (exactly as the general path).
_ASCII_OTHERS = {i: " " for i in range(128) if not (chr(i).isalnum() or chr(i).isspace())}


def normalise(text: str) -> str:
    """Case, width, spacing, punctuation and Arabic diacritics/tatweel do not matter."""
    if text and text.isascii():
        return " ".join(text.lower().translate(_ASCII_OTHERS).split())
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = _ARABIC_MARKS.sub("", text)
    text = text.translate(_ALEFS)
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(text.split())


def is_arabic(text: str) -> bool:
    """Whether a keyword is written in Arabic script (how the keywords page groups them)."""
    return any("\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" for ch in text)


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:30].strip("-")
    return slug if len(slug) >= 3 else "business"


async def ensure(db: AsyncSession, workspace_id: int) -> PrivacySettings:
    """The workspace's settings, created with a handle from its name on first use."""
    row = await repo.settings_of(db, workspace_id)
    if row is not None:
        return row
    ws = await repo.workspace(db, workspace_id)
    if ws is None:
        raise NotFound("No such workspace.")
    base = _slug(ws.name)
    handle, n = base, 1
    while await repo.handle_taken(db, handle):
        n += 1
        handle = f"{base}-{n}"
    row = PrivacySettings(
        workspace_id=workspace_id,
        handle=handle,
        keywords=[dict(k) for k in DEFAULT_KEYWORDS],
        updated_by="system",
        updated_at=clock.now(),
    )
    await repo.add(db, row)
    return row


def _check_keywords(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from connectx.privacy.requests.service import KINDS

    if len(raw) > MAX_KEYWORDS:
        raise InvalidInput(f"Up to {MAX_KEYWORDS} keywords.", field="keywords")
    out, seen = [], set()
    for item in raw:
        text = str(item.get("text") or "").strip()
        kind = item.get("kind") or None
        if not text or len(text) > MAX_KEYWORD or len(normalise(text)) < 2:
            raise InvalidInput(
                f"Each keyword is 2 to {MAX_KEYWORD} characters of words.", field="keywords"
            )
        if kind is not None and kind not in KINDS:
            raise InvalidInput(
                f"A keyword's kind is one of {', '.join(KINDS)}, or empty for the menu.",
                field="keywords",
            )
        key = normalise(text)
        if key in seen:
            raise InvalidInput(f"The keyword {text!r} is listed twice.", field="keywords")
        seen.add(key)
        out.append({"text": text, "kind": kind})
    return out


async def update(
    db: AsyncSession,
    principal: Principal,
    *,
    handle: str | None = None,
    keywords: list[dict[str, Any]] | None = None,
    code_template: str | None = None,
    code_template_language: str | None = None,
) -> PrivacySettings:
    assert principal.workspace_id is not None
    row = await ensure(db, principal.workspace_id)
    changed = []
    if handle is not None:
        handle = handle.strip().lower()
        if not _HANDLE.match(handle):
            raise InvalidInput(
                "A handle is 3 to 40 lowercase letters, digits and dashes (not at the ends).",
                field="handle",
            )
        if await repo.handle_taken(db, handle, other_than=principal.workspace_id):
            raise InvalidInput("That handle is taken; choose another.", field="handle")
        row.handle = handle
        changed.append("handle")
    if keywords is not None:
        row.keywords = _check_keywords(keywords)
        changed.append("keywords")
    if code_template is not None:
        row.code_template = code_template.strip() or None
        row.code_template_language = (code_template_language or "en_US").strip() or "en_US"
        changed.append("code_template")
    row.updated_by = principal.actor
    row.updated_at = clock.now()
    await db.flush()
    _cache.pop(principal.workspace_id, None)
    await audit.record(
        db,
        actor=principal.actor,
        action="privacy_settings.updated",
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data={"fields": changed},
    )
    return row


async def find_business(db: AsyncSession, text: str) -> int:
    """The workspace a person names on the privacy center: its handle, or one of its WhatsApp
    numbers."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput(
            "Name the business: its ConnectX handle or the WhatsApp number you write to.",
            field="business",
        )
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= 6 and not set(text) - set("+0123456789 -()."):
        if text.startswith("00"):
            digits = digits[2:]
        found = await repo.workspace_of_number(db, ["+" + digits])
    else:
        row = await repo.settings_by_handle(db, text.lower().lstrip("@"))
        found = row.workspace_id if row is not None else None
    if found is None:
        raise InvalidInput(
            "We found no business with that handle or WhatsApp number on ConnectX. Check it, "
            "or ask the business for its handle.",
            field="business",
        )
    return int(found)


async def keywords_of(db: AsyncSession, workspace_id: int) -> list[dict[str, Any]]:
    """The workspace's keywords (normalised), cached per process for a few seconds: this runs
    for inbound text messages."""
    hit = _cache.get(workspace_id)
    if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
        return hit[1]
    row = await repo.settings_of(db, workspace_id)
    raw = row.keywords if row is not None else DEFAULT_KEYWORDS
    # A keyword matches the whole message, so "DELETE MY DATA" never reads as "MY DATA".
    value = [{"key": normalise(str(k["text"])), "kind": k.get("kind")} for k in raw]
    _cache[workspace_id] = (time.monotonic(), value)
    return value


def forget_cache() -> None:
    _cache.clear()
