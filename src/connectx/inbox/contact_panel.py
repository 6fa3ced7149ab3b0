"""The contact side panel: who the customer is (with the workspace's own attributes, editable),
their conversations, their consent as the ledger derives it, and (once issue 7 lands) their
data requests.

Editing goes through :func:`update`, which seals the attributes members type under the
contact's key, masks card numbers, audits the change (field names only) and tells the
workspace's browsers (``contact.updated``). The name is the customer's WhatsApp profile name,
which every message refreshes, so it is not editable here (a member's own label for the person
goes in an attribute).

Hook for data-subject requests: the requests module registers a provider with
:func:`provide_requests`; until one is registered the panel's ``requests`` is ``None``
("not available"), not an empty list ("none").
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.contacts import repository as contacts_repo
from connectx.contacts.service import Contacts, ContactView, subject_of
from connectx.inbox import repository as repo
from connectx.kit import clock
from connectx.kit.errors import InvalidInput
from connectx.models.conversation import Conversation
from connectx.privacy import consent
from connectx.privacy.consent import ConsentState
from connectx.privacy.pan import mask_pans
from connectx.realtime import publish as realtime

ATTRIBUTES = "contacts.attributes"
ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_ATTRIBUTES = 30
MAX_VALUE = 500
HISTORY = 20

RequestsProvider = Callable[[AsyncSession, int, int], Awaitable[list[dict[str, Any]]]]
_requests_provider: RequestsProvider | None = None


def provide_requests(provider: RequestsProvider) -> RequestsProvider:
    """Register who lists a contact's data requests: ``provider(db, workspace_id, contact_id)``
    returns small dicts (id, kind, status, due date), no personal data."""
    global _requests_provider
    _requests_provider = provider
    return provider


@dataclass
class Panel:
    contact: ContactView
    attributes: dict[str, str]
    conversations: list[Conversation]
    consent: list[ConsentState]
    requests: list[dict[str, Any]] | None = field(default=None)


async def attributes_of(contacts: Contacts, contact: Any) -> dict[str, str]:
    raw = await contacts.vault.decrypt_or_none(
        contact.workspace_id, subject_of(contact.id), ATTRIBUTES, contact.attributes_enc
    )
    value = json.loads(raw) if raw else {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


async def panel(db: AsyncSession, principal: Principal, contact_id: int) -> Panel:
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    contact = await contacts_repo.get(db, ws, contact_id)
    contacts = Contacts(db, principal.actor)
    view = await contacts.view(contact)
    requests = None
    if _requests_provider is not None:
        requests = await _requests_provider(db, ws, contact.id)
    result = Panel(
        contact=view,
        attributes=await attributes_of(contacts, contact),
        conversations=await repo.conversations_of_contact(db, ws, contact.id, HISTORY),
        consent=await consent.states(db, subject_of(contact.id)),
        requests=requests,
    )
    await audit.record_view(
        db,
        actor=principal.actor,
        action="contact.viewed",
        subject=subject_of(contact.id),
        workspace_id=ws,
        ip=principal.ip,
        data={"view": "panel"},
    )
    return result


def check_attributes(values: dict[str, str | None], current: dict[str, str]) -> dict[str, str]:
    merged = dict(current)
    for key, value in values.items():
        if not ATTRIBUTE_KEY.match(key):
            raise InvalidInput(
                f"Attribute names are lowercase letters, digits and '_' (up to 32), "
                f"starting with a letter; {key[:40]!r} is not.",
                field="attributes",
            )
        if value is None or not value.strip():
            merged.pop(key, None)
            continue
        if len(value) > MAX_VALUE:
            raise InvalidInput(
                f"Attribute {key!r} is longer than {MAX_VALUE} characters.", field="attributes"
            )
        merged[key] = mask_pans(value.strip())
    if len(merged) > MAX_ATTRIBUTES:
        raise InvalidInput(
            f"A contact has at most {MAX_ATTRIBUTES} attributes.", field="attributes"
        )
    return merged


async def write_attributes(
    db: AsyncSession,
    contacts: Contacts,
    contact: Any,
    values: dict[str, str | None],
    *,
    source: str,
    ip: str | None = None,
) -> list[str]:
    """Set attributes (a null or empty value removes one; the others are kept), sealed under
    the contact's key, audited (counts and the source only: attribute names can be personal)
    and announced to the workspace's browsers. Returns the names that changed."""
    ws = contact.workspace_id
    subject = subject_of(contact.id)
    current = await attributes_of(contacts, contact)
    merged = check_attributes(values, current)
    if merged == current:
        return []
    changed = sorted(k for k in {*current, *merged} if current.get(k) != merged.get(k))
    contact.attributes_enc = (
        await contacts.vault.encrypt(ws, subject, ATTRIBUTES, json.dumps(merged, sort_keys=True))
        if merged
        else None
    )
    contact.updated_at = clock.now()
    await db.flush()
    await audit.record(
        db,
        actor=contacts.actor,
        action="contact.updated",
        subject=subject,
        workspace_id=ws,
        ip=ip,
        data={"fields": ["attributes"], "keys": len(merged), "source": source},
    )
    realtime.after_commit(db, ws, "contact.updated", contact_id=contact.id)
    return changed


async def update(
    db: AsyncSession,
    principal: Principal,
    contact_id: int,
    attributes: dict[str, str | None],
) -> Panel:
    """Set attributes (a null or empty value removes one); the others are kept."""
    assert principal.workspace_id is not None
    contact = await contacts_repo.get(db, principal.workspace_id, contact_id)
    contacts = Contacts(db, principal.actor)
    await write_attributes(db, contacts, contact, attributes, source="member", ip=principal.ip)
    return await panel(db, principal, contact.id)
