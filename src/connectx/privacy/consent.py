"""The consent ledger: append-only records; the current state is derived, never stored.

Each decision (given or withdrawn) is one new row with the words the person saw, their hash, the
notice version, the source, the actor and the time. There is no update or delete path in the code,
and database triggers refuse UPDATE and DELETE on ``consent_records`` (migration 0002e). The
current state of a (subject, purpose, channel) is the latest decision; no decision means no
consent. See docs/consent.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.audit import service as audit
from connectx.kit import clock
from connectx.kit.errors import InvalidInput
from connectx.kit.phones import to_e164
from connectx.models.consent import ConsentRecord
from connectx.privacy import consent_repository as repo
from connectx.privacy.vault import Vault

# What a person can consent to (policy §3: marketing only with consent).
PURPOSES = ("marketing", "product_updates", "analytics", "preferences")
# "web": cookies and similar technologies in the browser (docs/cookies.md).
CHANNELS = ("email", "whatsapp", "web")
# Where a decision came from: forms, keywords and webhooks, imports, programs, people.
SOURCES = (
    "signup_form",
    "account_settings",
    "unsubscribe_link",
    "whatsapp_keyword",
    "whatsapp_user_preferences",  # Meta's user_preferences webhook
    "whatsapp_error_131050",  # Meta: the user stopped marketing messages
    "ctwa_referral",  # click-to-WhatsApp ad referral
    "import",
    "api",
    "agent",
    "cookie_banner",  # the cookie banner or the cookie settings page
    "privacy_request",  # a data-subject request (withdrawal, objection: privacy/rights)
    "suppression_list",  # a re-created contact whose address had opted out before
)


def wording_hash(wording: str) -> str:
    return hashlib.sha256(wording.encode()).hexdigest()


@dataclass(frozen=True)
class ConsentState:
    """The derived state of one (subject, purpose, channel)."""

    subject: str
    purpose: str
    channel: str
    granted: bool
    since: datetime | None  # when the deciding record was made; None: never asked
    source: str | None
    record_id: int | None

    @property
    def decided(self) -> bool:
        return self.record_id is not None


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise InvalidInput(
            f"Unknown consent {what} {value!r}: use one of {', '.join(allowed)}.", field=what
        )


def _check(purpose: str, channel: str, source: str | None = None) -> None:
    _one_of(purpose, PURPOSES, "purpose")
    _one_of(channel, CHANNELS, "channel")
    if source is not None:
        _one_of(source, SOURCES, "source")


async def record(
    db: AsyncSession,
    *,
    subject: str,
    workspace_id: int | None,
    purpose: str,
    channel: str,
    granted: bool,
    source: str,
    wording: str,
    notice_version: str,
    actor: str,
    ip: str | None = None,
) -> ConsentRecord:
    """Append one consent decision (given or withdrawn) with the words the person saw, and its
    audit event (``consent.granted`` / ``consent.withdrawn``) in the same transaction."""
    _check(purpose, channel, source)
    if not wording.strip():
        raise InvalidInput("Record the words the person was shown.", field="wording")
    if not notice_version.strip():
        raise InvalidInput("Record the privacy notice version in force.", field="notice_version")
    entry = ConsentRecord(
        subject=subject,
        workspace_id=workspace_id,
        purpose=purpose,
        channel=channel,
        granted=granted,
        source=source,
        wording=wording,
        wording_hash=wording_hash(wording),
        notice_version=notice_version,
        actor=actor,
        created_at=clock.now(),
    )
    await repo.append(db, entry)
    if channel == "whatsapp" and subject.startswith("contact:"):
        from connectx.privacy import suppression  # it reads contacts, which import this module

        await suppression.on_decision(db, entry)
    await audit.record(
        db,
        actor=actor,
        action="consent.granted" if granted else "consent.withdrawn",
        subject=subject,
        workspace_id=workspace_id,
        ip=ip,
        data={"record_id": entry.id, "purpose": purpose, "channel": channel, "source": source},
    )
    return entry


def _state(subject: str, purpose: str, channel: str, row: ConsentRecord | None) -> ConsentState:
    if row is None:
        return ConsentState(subject, purpose, channel, False, None, None, None)
    return ConsentState(subject, purpose, channel, row.granted, row.created_at, row.source, row.id)


async def current_state(db: AsyncSession, subject: str, purpose: str, channel: str) -> ConsentState:
    """The latest decision wins; no record means not granted."""
    _check(purpose, channel)
    return _state(subject, purpose, channel, await repo.latest(db, subject, purpose, channel))


async def is_granted(db: AsyncSession, subject: str, purpose: str, channel: str) -> bool:
    """The send gate's question: does ``subject`` consent to ``purpose`` on ``channel`` now?"""
    return (await current_state(db, subject, purpose, channel)).granted


async def states(db: AsyncSession, subject: str) -> list[ConsentState]:
    """The current state of every purpose and channel for one subject (for settings pages)."""
    latest = {(r.purpose, r.channel): r for r in await repo.latest_per_purpose(db, subject)}
    return [
        _state(subject, purpose, channel, latest.get((purpose, channel)))
        for purpose in PURPOSES
        for channel in CHANNELS
    ]


async def history(
    db: AsyncSession, subject: str, purpose: str | None = None, channel: str | None = None
) -> Sequence[ConsentRecord]:
    """Every decision of ``subject`` (optionally for one purpose and channel), oldest first."""
    if purpose is not None:
        _one_of(purpose, PURPOSES, "purpose")
    if channel is not None:
        _one_of(channel, CHANNELS, "channel")
    return await repo.history(db, subject, purpose, channel)


def normalise_address(channel: str, address: str) -> str:
    """The canonical form of an address for suppression: lower-cased e-mail, E.164 phone."""
    if channel == "email":
        return address.strip().lower()
    _one_of(channel, CHANNELS, "channel")
    return to_e164(address)


async def suppression_hash(
    db: AsyncSession, workspace_id: int | None, channel: str, address: str
) -> bytes:
    """A keyed hash of an address for the suppression list: an opt-out outlives the contact (it
    survives erasure and re-creation) without keeping the address. Per workspace, so two
    workspaces' lists cannot be joined."""
    value = normalise_address(channel, address)
    return await Vault(db).blind_index(f"suppress|{workspace_id or 0}|{channel}", value)
