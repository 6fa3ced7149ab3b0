"""Consent decisions made by people in the product: an account holder on their own e-mail
consents (account settings), an agent or an API key on a contact's behalf (the agent is the
actor in the ledger). See docs/consent.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.accounts.service import MARKETING_WORDING, NOTICE_VERSION
from connectx.audit import service as audit
from connectx.contacts import repository as contacts_repo
from connectx.kit.errors import InvalidInput
from connectx.models.consent import ConsentRecord
from connectx.privacy import consent

# What an account holder can give or withdraw from the settings page, and the words shown.
ACCOUNT_CHOICES: dict[str, str] = {
    "marketing": MARKETING_WORDING,
    "product_updates": (
        "Send me e-mails about new ConnectX features and changes to the product. "
        "I can unsubscribe at any time."
    ),
}
WITHDRAWN = "I no longer want {what} e-mails from ConnectX."
WHAT = {"marketing": "news and offers", "product_updates": "product update"}


@dataclass
class ContactConsents:
    contact_id: int
    states: list[consent.ConsentState]
    history: Sequence[ConsentRecord]


def _account_wording(purpose: str, granted: bool) -> str:
    if purpose not in ACCOUNT_CHOICES:
        raise InvalidInput(
            f"Choose one of {', '.join(ACCOUNT_CHOICES)} (your account's e-mail consents).",
            field="purpose",
        )
    return ACCOUNT_CHOICES[purpose] if granted else WITHDRAWN.format(what=WHAT[purpose])


async def account_states(db: AsyncSession, user_id: int) -> list[consent.ConsentState]:
    """The account holder's e-mail consents shown on their settings page."""
    subject = f"user:{user_id}"
    return [await consent.current_state(db, subject, p, "email") for p in ACCOUNT_CHOICES]


async def decide_for_account(
    db: AsyncSession, principal: Principal, purpose: str, granted: bool
) -> consent.ConsentState:
    """The signed-in person gives or withdraws one of their own e-mail consents."""
    assert principal.user_id is not None
    subject = f"user:{principal.user_id}"
    wording = _account_wording(purpose, granted)
    await consent.record(
        db,
        subject=subject,
        workspace_id=None,
        purpose=purpose,
        channel="email",
        granted=granted,
        source="account_settings",
        wording=wording,
        notice_version=NOTICE_VERSION,
        actor=principal.actor,
        ip=principal.ip,
    )
    return await consent.current_state(db, subject, purpose, "email")


async def contact_consents(
    db: AsyncSession, principal: Principal, contact_id: int
) -> ContactConsents:
    """A contact's consent states and ledger (audited as a view of their data)."""
    assert principal.workspace_id is not None
    contact = await contacts_repo.get(db, principal.workspace_id, contact_id)
    subject = f"contact:{contact.id}"
    result = ContactConsents(
        contact.id, await consent.states(db, subject), await consent.history(db, subject)
    )
    await audit.record(
        db,
        actor=principal.actor,
        action="contact.consent_viewed",
        subject=subject,
        workspace_id=principal.workspace_id,
        ip=principal.ip,
        data={"records": len(result.history)},
    )
    return result


async def decide_for_contact(
    db: AsyncSession,
    principal: Principal,
    contact_id: int,
    *,
    purpose: str,
    channel: str,
    granted: bool,
    wording: str | None,
) -> consent.ConsentState:
    """An agent (or an API key) records a contact's decision. Withdrawal needs no words (the
    customer asked to stop); giving consent needs the words the customer agreed to."""
    assert principal.workspace_id is not None
    contact = await contacts_repo.get(db, principal.workspace_id, contact_id)
    words = (wording or "").strip()
    if granted and not words:
        raise InvalidInput(
            "Give 'wording': the words the customer agreed to (the consent must be specific).",
            field="wording",
        )
    if len(words) > 2000:
        raise InvalidInput("'wording' is at most 2,000 characters.", field="wording")
    if not words:
        words = f"The customer asked to stop {purpose.replace('_', ' ')} messages on {channel}."
    subject = f"contact:{contact.id}"
    await consent.record(
        db,
        subject=subject,
        workspace_id=principal.workspace_id,
        purpose=purpose,
        channel=channel,
        granted=granted,
        source="api" if principal.api_key_id is not None else "agent",
        wording=words,
        notice_version=NOTICE_VERSION,
        actor=principal.actor,
        ip=principal.ip,
    )
    return await consent.current_state(db, subject, purpose, channel)
