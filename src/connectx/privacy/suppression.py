"""The suppression list: an opt-out outlives the contact.

When a contact withdraws marketing consent on WhatsApp, keyed hashes of their phone and BSUID
(per workspace, under the vault's index key: no address is kept) go on the list; when they give
it again, the hashes come off. A contact created later with a listed phone or BSUID (a new message
after their erasure, or a send to their number through the API) starts with a withdrawal in the
ledger (source ``suppression_list``), so the send gate refuses marketing to them until they opt
in again. See docs/consent.md.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.contacts import repository as contacts_repo
from connectx.integrations.whatsapp.schemas import Identity
from connectx.kit import clock
from connectx.models.consent import ConsentRecord
from connectx.models.contact import Contact
from connectx.privacy import suppression_repository as repo
from connectx.privacy.vault import Vault

SOURCE = "suppression_list"
WORDING = (
    "This WhatsApp number or user id opted out of marketing messages before this contact was "
    "created (suppression list); the opt-out stays in force until they opt in again."
)


async def address_hashes(
    vault: Vault, workspace_id: int, phone: str | None, bsuid: str | None
) -> list[bytes]:
    hashes = []
    if phone:
        hashes.append(await vault.blind_index(f"suppress|{workspace_id}|whatsapp", phone))
    if bsuid:
        hashes.append(await vault.blind_index(f"suppress|{workspace_id}|whatsapp_bsuid", bsuid))
    return hashes


async def on_decision(db: AsyncSession, entry: ConsentRecord) -> None:
    """Keep the list in step with a contact's WhatsApp decision (called by ``consent.record``)."""
    prefix, _, number = entry.subject.partition(":")
    ws = entry.workspace_id
    if prefix != "contact" or not number.isdigit() or ws is None or entry.source == SOURCE:
        return
    contact = (await contacts_repo.get_many(db, ws, [int(number)])).get(int(number))
    if contact is None:
        return
    vault = Vault(db)
    subject = entry.subject
    phone = await vault.decrypt_or_none(ws, subject, "contacts.phone", contact.phone_enc)
    bsuid = await vault.decrypt_or_none(ws, subject, "contacts.bsuid", contact.bsuid_enc)
    hashes = await address_hashes(vault, ws, phone, bsuid)
    if entry.granted:
        await repo.remove(db, ws, entry.channel, entry.purpose, hashes)
    else:
        await repo.add(
            db, ws, entry.channel, entry.purpose, hashes, record_id=entry.id, created_at=clock.now()
        )


async def apply_to_new(
    db: AsyncSession, vault: Vault, created: list[tuple[Contact, Identity]], actor: str
) -> int:
    """Withdraw, in the ledger, what the list says for each newly created contact (one query per
    workspace). Returns how many withdrawals were recorded."""
    from connectx.privacy import consent

    by_ws: dict[int, dict[bytes, Contact]] = defaultdict(dict)
    for contact, identity in created:
        ws = contact.workspace_id
        for h in await address_hashes(vault, ws, identity.phone, identity.bsuid):
            by_ws[ws][h] = contact
    recorded = 0
    for ws, wanted in by_ws.items():
        done: set[tuple[int, str, str]] = set()
        for row in await repo.matching(db, ws, list(wanted)):
            contact = wanted[row.address_hash]
            key = (contact.id, row.purpose, row.channel)
            if key in done:
                continue
            done.add(key)
            subject = f"contact:{contact.id}"
            if (await consent.current_state(db, subject, row.purpose, row.channel)).decided:
                continue  # they decided since they were created (a STOP in the same batch)
            await consent.record(
                db,
                subject=subject,
                workspace_id=ws,
                purpose=row.purpose,
                channel=row.channel,
                granted=False,
                source=SOURCE,
                wording=WORDING,
                notice_version="suppression-list",
                actor=actor,
            )
            recorded += 1
    return recorded
