"""The ways a request comes in: the public privacy center, account settings, a workspace's API
(on behalf of a customer), the DPO contact form. WhatsApp is in ``chat.py``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.kit.errors import InvalidInput
from connectx.models.data_request import DataRequest
from connectx.privacy.requests import repository as repo
from connectx.privacy.requests import service, settings, verification
from connectx.privacy.requests.service import ACCOUNT_HOLDER, CUSTOMER, Filing
from connectx.privacy.vault import Vault

MAX_NAME = 200


def _email(raw: str) -> str:
    from connectx.accounts.service import normalise_email

    try:
        return normalise_email(raw)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, field="address") from None


def _phone(raw: str) -> str:
    from connectx.contacts.service import search_phone

    try:
        return search_phone(raw)
    except InvalidInput:
        raise InvalidInput(
            "Give your WhatsApp number in international form, e.g. +971501234567.",
            field="address",
        ) from None


def params_for(kind: str, form: Mapping[str, str | None]) -> dict[str, Any] | None:
    """The executor's parameters from what a person typed (docs/privacy-rights.md)."""
    if kind == "rectification":
        out = {k: (form.get(k) or "").strip() for k in ("name", "email", "phone")}
        values = {k: v for k, v in out.items() if v}
        return values or None
    if kind in ("withdrawal", "objection"):
        from connectx.privacy import consent

        purpose = (form.get("purpose") or "marketing").strip() or "marketing"
        if purpose not in consent.PURPOSES:
            raise InvalidInput(
                f"Choose a purpose: one of {', '.join(consent.PURPOSES)}.", field="purpose"
            )
        params: dict[str, Any] = {"purpose": purpose}
        if kind == "objection" and (form.get("details") or "").strip():
            params["grounds"] = (form.get("details") or "").strip()[:2000]
        return params
    return None


@dataclass
class Filed:
    request: DataRequest
    code_delivered: bool


async def from_privacy_center(
    db: AsyncSession,
    *,
    who: str,
    business: str | None,
    kind: str,
    address: str,
    details: str | None,
    form: Mapping[str, str | None] | None = None,
    ip: str | None = None,
) -> Filed:
    """Anyone files on the public page; a one-time code goes to the address on file."""
    kind = service.check_kind(kind)
    address = (address or "").strip()
    if not address:
        raise InvalidInput(
            "Give the e-mail address or WhatsApp number we know you by.", field="address"
        )
    vault = Vault(db)
    if who == ACCOUNT_HOLDER:
        if "@" not in address:
            raise InvalidInput(
                "Account holders are found by the e-mail address they sign in with.",
                field="address",
            )
        from connectx.accounts import service as accounts

        email = _email(address)
        user = await accounts.find_user_by_email(db, email)
        filing = Filing(
            kind=kind,
            subject_kind=ACCOUNT_HOLDER,
            source="web",
            filed_by="anonymous",
            subject=f"user:{user.id}" if user is not None else None,
            email=email,
            details=details,
            params=params_for(kind, {**(form or {}), "details": details}),
            notify_via="email",
        )
    elif who == CUSTOMER:
        workspace_id = await settings.find_business(db, business or "")
        if "@" in address:
            raise InvalidInput(
                "Businesses on ConnectX know their customers by WhatsApp number: give the number "
                "you write to the business from.",
                field="address",
            )
        from connectx.contacts import repository as contacts_repo
        from connectx.contacts.service import phone_index

        phone = _phone(address)
        found = await contacts_repo.by_indexes(
            db, workspace_id, [await phone_index(vault, workspace_id, phone)], []
        )
        filing = Filing(
            kind=kind,
            subject_kind=CUSTOMER,
            source="web",
            filed_by="anonymous",
            workspace_id=workspace_id,
            subject=f"contact:{found[0].id}" if found else None,
            phone=phone,
            details=details,
            params=params_for(kind, {**(form or {}), "details": details}),
            notify_via="whatsapp",
        )
    else:
        raise InvalidInput(
            "Say whether you hold a ConnectX account or are a customer of a business.",
            field="who",
        )
    req = await service.file(db, filing, ip=ip)
    sent = await verification.send_code(db, req)
    return Filed(req, sent.delivered)


async def from_account(
    db: AsyncSession,
    principal: Principal,
    *,
    kind: str,
    details: str | None,
    form: Mapping[str, str | None] | None = None,
) -> DataRequest:
    """A signed-in account holder files about their own account: the session verifies them."""
    from connectx.accounts import service as accounts

    assert principal.user_id is not None
    kind = service.check_kind(kind)
    user = await accounts.get_user(db, principal.user_id)
    filing = Filing(
        kind=kind,
        subject_kind=ACCOUNT_HOLDER,
        source="account",
        filed_by=principal.actor,
        subject=f"user:{user.id}",
        email=await accounts.email_of(db, user),
        details=details,
        params=params_for(kind, {**(form or {}), "details": details}),
        notify_via="email",
    )
    return await service.file(db, filing, verified_by="signed_in", ip=principal.ip)


async def on_behalf_of_contact(
    db: AsyncSession,
    principal: Principal,
    *,
    contact_id: int,
    kind: str,
    details: str | None,
    params: dict[str, Any] | None,
    identity_checked: bool,
) -> Filed:
    """A workspace files for one of its customers (who asked in person, by phone, ...). The
    workspace may attest it checked who asked; otherwise the customer confirms with a code sent
    to their WhatsApp number."""
    from connectx.contacts import repository as contacts_repo

    assert principal.workspace_id is not None
    kind = service.check_kind(kind)
    contact = await contacts_repo.get(db, principal.workspace_id, contact_id)
    filing = Filing(
        kind=kind,
        subject_kind=CUSTOMER,
        source="api",
        filed_by=principal.actor,
        workspace_id=principal.workspace_id,
        subject=f"contact:{contact.id}",
        details=details,
        params=params,
        notify_via="whatsapp",
    )
    req = await service.file(
        db,
        filing,
        verified_by="workspace_attested" if identity_checked else None,
        ip=principal.ip,
    )
    if identity_checked:
        return Filed(req, True)
    sent = await verification.send_code(db, req)
    return Filed(req, sent.delivered)


async def dpo_inquiry(
    db: AsyncSession, *, name: str, email: str, message: str, ip: str | None = None
) -> DataRequest:
    """The DPO contact form (policy §11): a tracked inquiry for ConnectX's DPO, with the same
    30-day clock. Nothing is disclosed by it, so it needs no verification."""
    name = (name or "").strip()
    if len(name) > MAX_NAME:
        raise InvalidInput(f"Keep your name under {MAX_NAME} characters.", field="name")
    if not (message or "").strip():
        raise InvalidInput("Write your question or comment.", field="message")
    filing = Filing(
        kind=service.INQUIRY,
        subject_kind=ACCOUNT_HOLDER,
        source="dpo_form",
        filed_by="anonymous",
        email=_email(email) if (email or "").strip() else None,
        name=name or None,
        details=message,
        notify_via="email",
    )
    if filing.email is None:
        raise InvalidInput("Give an e-mail address for the answer.", field="email")
    return await service.file(db, filing, verified_by="not_needed", ip=ip)


async def by_reference(db: AsyncSession, reference: str) -> DataRequest | None:
    return await repo.by_reference(db, (reference or "").strip().upper())
