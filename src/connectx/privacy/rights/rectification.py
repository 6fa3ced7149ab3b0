"""Rectification (GDPR art. 16): the corrected value replaces the old one everywhere it lives.

* Contact: the sealed name and its name-search tokens, the sealed phone and its keyed hash
  (lookups find the person by the new number), the sealed ``to`` of sends still waiting in the
  outbox; the attributes the workspace keeps about them (set, or removed with ``null``), through
  the inbox's contact panel service (sealed, audited, announced to the agents' screens).
* Account holder: name and phone (the accounts service), e-mail (sealed value and keyed hash; the
  new address must be confirmed before the next sign-in, and a confirmation link is mailed).

Recipients of the changed categories are notified (art. 19) with the corrected values.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.errors import Conflict, InvalidInput
from connectx.kit.phones import to_e164
from connectx.models.account import User
from connectx.models.contact import Contact
from connectx.privacy.rights import notices
from connectx.privacy.rights import repository as repo
from connectx.privacy.rights.base import Outcome, Result, Right, Subject
from connectx.privacy.rights.context import Context
from connectx.privacy.rights.params import RectificationParams
from connectx.privacy.rights.subjects import ensure_exists
from connectx.privacy.vault import Vault

CATEGORY = {
    "name": "user.name",
    "phone": "user.contact.phone",
    "email": "user.contact.email",
    "attributes": "user.profile.custom",
}
PAYLOAD = "outbox_messages.payload"


def _phone(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("00"):  # the international prefix as dialled in the Gulf and Europe
        raw = "+" + raw[2:]
    try:
        return to_e164(raw)
    except Exception as exc:
        raise InvalidInput(
            "The corrected phone is not a valid number: give it in international form, "
            "e.g. +971501234567.",
            field="phone",
        ) from exc


def _name(raw: str) -> str:
    clean = " ".join(raw.split())
    if not clean:
        raise InvalidInput("The corrected name is empty.", field="name")
    return clean


async def _reseal_pending(db: AsyncSession, contact: Contact, phone: str) -> int:
    """Sends still waiting for this contact go to the corrected number."""
    vault = Vault(db)
    subject = f"contact:{contact.id}"
    changed = 0
    for row in await repo.pending_sends(db, contact.workspace_id, contact.id):
        if row.payload_enc is None:
            continue
        body = json.loads(
            await vault.decrypt(contact.workspace_id, subject, PAYLOAD, row.payload_enc)
        )
        if "to" in body and body["to"] != phone:
            body["to"] = phone
            row.payload_enc = await vault.encrypt(
                contact.workspace_id, subject, PAYLOAD, json.dumps(body)
            )
            changed += 1
    return changed


async def _contact(
    db: AsyncSession, contact: Contact, params: RectificationParams, ctx: Context
) -> tuple[list[str], dict[str, str], dict[str, Any], int]:
    from connectx.contacts.service import Contacts
    from connectx.inbox import contact_panel

    if params.email is not None:
        raise InvalidInput("A customer's e-mail address is not kept here.", field="email")
    contacts = Contacts(db, ctx.actor)
    before = await contacts.view(contact)
    attributes_before = await contact_panel.attributes_of(contacts, contact)
    phone = _phone(params.phone) if params.phone is not None else None
    name = _name(params.name) if params.name is not None else None
    if params.attributes:  # checked before anything changes: a bad name changes nothing
        contact_panel.check_attributes(params.attributes, attributes_before)
    changed = await contacts.rectify(contact, name=name, phone=phone, source="privacy_request")
    old: dict[str, str] = {
        CATEGORY["name"]: before.name or "",
        CATEGORY["phone"]: before.phone or "",
    }
    new: dict[str, Any] = {}
    if "name" in changed and name:
        new[CATEGORY["name"]] = name
    resealed = 0
    if "phone" in changed and phone:
        new[CATEGORY["phone"]] = phone
        resealed = await _reseal_pending(db, contact, phone)
    if params.attributes:
        keys = await contact_panel.write_attributes(
            db, contacts, contact, params.attributes, source="privacy_request", ip=ctx.ip
        )
        if keys:
            after = await contact_panel.attributes_of(contacts, contact)
            changed.append("attributes")
            new[CATEGORY["attributes"]] = {k: after.get(k) for k in keys}
    return changed, {k: v for k, v in old.items() if v}, new, resealed


async def _user(
    db: AsyncSession, user: User, params: RectificationParams, ctx: Context
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    from connectx.accounts import service as accounts

    if params.attributes:
        raise InvalidInput("Account holders have no attributes to correct.", field="attributes")
    profile = await accounts.profile(db, user)
    old = {
        CATEGORY["name"]: profile.name,
        CATEGORY["phone"]: profile.phone or "",
        CATEGORY["email"]: profile.email,
    }
    changed: list[str] = []
    new: dict[str, str] = {}
    if params.name is not None and _name(params.name) != profile.name:
        changed.append("name")
        new[CATEGORY["name"]] = _name(params.name)
    if params.phone is not None and _phone(params.phone) != profile.phone:
        changed.append("phone")
        new[CATEGORY["phone"]] = _phone(params.phone)
    if changed:
        await accounts.update_profile(
            db,
            user.id,
            name=new.get(CATEGORY["name"]),
            phone=new.get(CATEGORY["phone"]),
            actor=ctx.actor,
            ip=ctx.ip,
        )
    if params.email is not None:
        email = accounts.normalise_email(params.email)
        if email != profile.email:
            other = await accounts.find_user_by_email(db, email)
            if other is not None and other.id != user.id:
                raise Conflict("Another account uses that e-mail address.", field="email")
            await accounts.change_email(db, user, email, actor=ctx.actor, ip=ctx.ip)
            changed.append("email")
            new[CATEGORY["email"]] = email
    return changed, {k: v for k, v in old.items() if v}, new


async def run(
    db: AsyncSession, subject: Subject, params: RectificationParams, ctx: Context
) -> Result:
    if (
        params.name is None
        and params.phone is None
        and params.email is None
        and not params.attributes
    ):
        raise InvalidInput(
            "Say what to correct: name, phone, e-mail or attributes.", field="params"
        )
    found = await ensure_exists(db, subject)
    result = Result(Right.RECTIFICATION, subject.ref, Outcome.DONE)
    if isinstance(found, Contact):
        changed, old, new, resealed = await _contact(db, found, params, ctx)
        result.counts["queued_sends_corrected"] = resealed
    else:
        changed, old, new = await _user(db, found, params, ctx)
        if "email" in changed:
            result.notices.append(
                "Confirm your new e-mail address with the link we sent to it before you next "
                "sign in."
            )
    if not changed:
        result.outcome = Outcome.NOTHING
        result.done.append("The values on file were already the ones you gave: nothing changed.")
        return result
    result.done.append(
        f"Corrected {', '.join(changed)} wherever it is kept (and in how we look you up)."
    )
    result.counts["fields"] = len(changed)
    await ctx.audit(db, Right.RECTIFICATION, "right_executed", subject, fields=changed)
    await notices.notify(
        db, subject, Right.RECTIFICATION, ctx, result, identifiers=old, changes=new
    )
    return result
