"""Contacts: who writes to the workspace, identified by BSUID and/or phone.

Resolution (:func:`resolve`) finds the contact by BSUID and by phone, links the two when a message
carries both, merges two contacts that turn out to be one person, and creates the contact on
first sight. Identifying fields are sealed under ``contact:<id>``; lookups use per-workspace keyed
hashes. Every creation and change writes an audit event with ids only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.contacts import repository as repo
from connectx.conversations import paging
from connectx.db.session import after_commit
from connectx.inbox import name_search
from connectx.integrations.whatsapp.schemas import Identity, Profile, phone_of, text
from connectx.kit import clock
from connectx.kit.errors import InvalidInput
from connectx.models.contact import Contact
from connectx.privacy import consent, suppression
from connectx.privacy.vault import Vault

SYSTEM_ACTOR = "system"

# Contact ids this process reserved, whose data keys exist, not used by the transaction that
# reserved them (it was cut short by its time budget): the next batches use them first, so a
# batch continued over several transactions makes each new person's key once. Only ids of
# committed reservations come here (never handed to any other row: docs/privacy-encryption.md).
_spare_ids: dict[int, list[int]] = {}


def subject_of(contact_id: int) -> str:
    return f"contact:{contact_id}"


async def phone_index(vault: Vault, workspace_id: int, phone: str) -> bytes:
    return await vault.blind_index("contact_phone", f"{workspace_id}|{phone}")


async def bsuid_index(vault: Vault, workspace_id: int, bsuid: str) -> bytes:
    return await vault.blind_index("contact_bsuid", f"{workspace_id}|{bsuid}")


@dataclass
class ContactView:
    id: int
    name: str | None
    phone: str | None
    bsuid: str | None
    username: str | None
    created_at: datetime
    last_inbound_at: datetime | None
    identity_changed_at: datetime | None
    # Processing restricted at the person's request (GDPR art. 18): agents see a banner.
    restricted: bool = False


async def _mark_restricted(db: AsyncSession, views: list[ContactView]) -> None:
    from connectx.privacy.rights.restriction import restricted_among

    found = await restricted_among(db, [v.id for v in views])
    for v in views:
        v.restricted = v.id in found


class Contacts:
    """Contact operations inside one transaction. The processor keeps one per batch: a batch's
    people are looked up in one query (:meth:`prefetch`), a person seen many times is compared
    once, and field changes are flushed together at the end."""

    def __init__(
        self, db: AsyncSession, actor: str = SYSTEM_ACTOR, *, defer_suppression: bool = False
    ) -> None:
        self.db = db
        # The processor checks a batch's new contacts against the suppression list in one go
        # (:meth:`check_suppressed`); other callers have each new contact checked at creation.
        self.defer_suppression = defer_suppression
        self._unchecked: list[tuple[Contact, Identity]] = []
        self.vault = Vault(db)
        self.actor = actor
        self._seen: dict[tuple[int, Identity], tuple[Contact, Profile | None]] = {}
        self._by_phone: dict[tuple[int, bytes], Contact] = {}
        self._by_bsuid: dict[tuple[int, bytes], Contact] = {}
        self._known: set[tuple[int, bytes]] = set()  # indexes looked up already
        self._indexes: dict[tuple[int, str, str], bytes] = {}
        self.created: dict[int, list[int]] = {}  # workspace -> new contact ids
        self._inbound: dict[int, Contact] = {}  # touch_inbound's, for write_inbound
        # workspace -> ids reserved by :meth:`prefetch` for contacts about to be created, whose
        # data keys exist already (made together in one key-store transaction)
        self._reserved: dict[int, list[int]] = {}
        self.on_merge: Callable[[int, int], None] | None = None  # (kept id, absorbed id)
        # Called first: writes queued for the absorbed contact must reach the database.
        self.before_merge: Callable[[], Awaitable[None]] | None = None

    # -- sealing ----------------------------------------------------------------------------
    async def _seal(self, contact: Contact, column: str, value: str) -> bytes:
        return await self.vault.encrypt(
            contact.workspace_id, subject_of(contact.id), f"contacts.{column}", value
        )

    async def _open(self, contact: Contact, column: str, blob: bytes | None) -> str | None:
        return await self.vault.decrypt_or_none(
            contact.workspace_id, subject_of(contact.id), f"contacts.{column}", blob
        )

    # -- indexes ----------------------------------------------------------------------------
    async def _index(self, workspace_id: int, kind: str, value: str) -> bytes:
        key = (workspace_id, kind, value)
        found = self._indexes.get(key)
        if found is None:
            if kind == "phone":
                found = await phone_index(self.vault, workspace_id, value)
            else:
                found = await bsuid_index(self.vault, workspace_id, value)
            self._indexes[key] = found
        return found

    def _remember(self, contact: Contact) -> None:
        ws = contact.workspace_id
        if contact.phone_index is not None:
            self._by_phone[(ws, contact.phone_index)] = contact
            self._known.add((ws, contact.phone_index))
        if contact.bsuid_index is not None:
            self._by_bsuid[(ws, contact.bsuid_index)] = contact
            self._known.add((ws, contact.bsuid_index))

    def _forget_indexes(self, contact: Contact) -> None:
        ws = contact.workspace_id
        for table, index in (
            (self._by_phone, contact.phone_index),
            (self._by_bsuid, contact.bsuid_index),
        ):
            if index is not None and table.get((ws, index)) is contact:
                del table[(ws, index)]

    async def _lookup(self, workspace_id: int, phones: list[bytes], bsuids: list[bytes]) -> None:
        phones = [i for i in phones if (workspace_id, i) not in self._known]
        bsuids = [i for i in bsuids if (workspace_id, i) not in self._known]
        if not phones and not bsuids:
            return
        for contact in await repo.by_indexes(self.db, workspace_id, phones, bsuids):
            self._remember(contact)
        self._known.update((workspace_id, i) for i in (*phones, *bsuids))

    async def prefetch(self, workspace_id: int, identities: list[Identity]) -> list[int]:
        """Load the contacts behind ``identities`` in one query, and their data keys with the
        new people's in one key-store transaction; the known contacts' ids."""
        phones = [await self._index(workspace_id, "phone", i.phone) for i in identities if i.phone]
        bsuids = [await self._index(workspace_id, "bsuid", i.bsuid) for i in identities if i.bsuid]
        await self._lookup(workspace_id, phones, bsuids)
        found = {self._by_phone.get((workspace_id, i)) for i in phones}
        found |= {self._by_bsuid.get((workspace_id, i)) for i in bsuids}
        known = sorted(c.id for c in found if c is not None)
        new = await self._prepare_new(workspace_id, identities)
        # returning people's keys loaded, new people's made: one key-store trip for both
        await self.vault.prepare_keys(
            workspace_id,
            load=[subject_of(i) for i in known],
            create=[subject_of(i) for i in new],
        )
        return known

    async def _prepare_new(self, workspace_id: int, identities: list[Identity]) -> list[int]:
        """Reserve ids for the people of ``identities`` nobody knows yet (their data keys are
        then made together, :meth:`prefetch`: a new contact used to cost one key-store
        transaction each, a third of the first message of a new customer). Identities sharing a
        phone or a BSUID are one person. Returns the reserved ids."""
        seen: set[tuple[str, str]] = set()
        new = 0
        for identity in identities:
            values = [("p", identity.phone)] if identity.phone else []
            values += [("b", identity.bsuid)] if identity.bsuid else []
            if not values or any(v in seen for v in values):
                continue
            seen.update(values)
            pidx = (
                await self._index(workspace_id, "phone", identity.phone) if identity.phone else None
            )
            bidx = (
                await self._index(workspace_id, "bsuid", identity.bsuid) if identity.bsuid else None
            )
            if (pidx and (workspace_id, pidx) in self._by_phone) or (
                bidx and (workspace_id, bidx) in self._by_bsuid
            ):
                continue
            new += 1
        if not new:
            return []
        spare = _spare_ids.get(workspace_id, [])
        ids, spare[:] = spare[:new], spare[new:]
        ids = await repo.still_reserved(self.db, ids)
        ids += await repo.reserve_ids(self.db, new - len(ids))
        if not self._reserved:
            after_commit(self.db, self._keep_unused)
        self._reserved.setdefault(workspace_id, []).extend(ids)
        # new keys for new ids; the spare ids' keys exist and are only loaded (prefetch)
        return ids

    async def _keep_unused(self) -> None:
        for workspace_id, ids in self._reserved.items():
            if ids:
                _spare_ids.setdefault(workspace_id, []).extend(ids)
        self._reserved = {}

    async def _find(
        self, workspace_id: int, pidx: bytes | None, bidx: bytes | None
    ) -> tuple[Contact | None, Contact | None]:
        await self._lookup(workspace_id, [pidx] if pidx else [], [bidx] if bidx else [])
        by_b = self._by_bsuid.get((workspace_id, bidx)) if bidx else None
        by_p = self._by_phone.get((workspace_id, pidx)) if pidx else None
        return by_b, by_p

    # -- fields -----------------------------------------------------------------------------
    async def _set_phone(self, contact: Contact, phone: str) -> None:
        self._forget_indexes(contact)
        contact.phone_index = await self._index(contact.workspace_id, "phone", phone)
        contact.phone_enc = await self._seal(contact, "phone", phone)
        self._remember(contact)

    async def _set_bsuid(self, contact: Contact, bsuid: str) -> None:
        self._forget_indexes(contact)
        contact.bsuid_index = await self._index(contact.workspace_id, "bsuid", bsuid)
        contact.bsuid_enc = await self._seal(contact, "bsuid", bsuid)
        self._remember(contact)

    async def _set_profile(self, contact: Contact, profile: Profile) -> list[str]:
        changed = []
        if profile.name and profile.name != await self._open(contact, "name", contact.name_enc):
            contact.name_enc = await self._seal(contact, "name", profile.name)
            await name_search.index(self.db, self.vault, contact, profile.name)
            changed.append("name")
        extra = {
            k: v
            for k, v in (("username", profile.username), ("parent_bsuid", profile.parent_bsuid))
            if v
        }
        if extra:
            current = json.loads(await self._open(contact, "profile", contact.profile_enc) or "{}")
            if {**current, **extra} != current:
                contact.profile_enc = await self._seal(
                    contact, "profile", json.dumps({**current, **extra}, sort_keys=True)
                )
                changed.append("profile")
        return changed

    async def _audit(self, action: str, contact: Contact, **data: Any) -> None:
        await audit.record(
            self.db,
            actor=self.actor,
            action=action,
            subject=subject_of(contact.id),
            workspace_id=contact.workspace_id,
            data=data,
        )

    # -- resolution -------------------------------------------------------------------------
    async def resolve(
        self,
        workspace_id: int,
        identity: Identity,
        profile: Profile | None = None,
        *,
        create: bool = True,
    ) -> Contact | None:
        """The contact behind ``identity`` (created when new and ``create``), with its BSUID,
        phone and profile brought up to date."""
        if not identity.known:
            return None
        cached = self._seen.get((workspace_id, identity))
        if cached is not None and (profile is None or profile == cached[1]):
            return cached[0]
        pidx = await self._index(workspace_id, "phone", identity.phone) if identity.phone else None
        bidx = await self._index(workspace_id, "bsuid", identity.bsuid) if identity.bsuid else None
        by_b, by_p = await self._find(workspace_id, pidx, bidx)
        contact = by_b or by_p
        if by_b is not None and by_p is not None and by_b.id != by_p.id:
            contact = await self.merge(keep=by_b, absorb=by_p, reason="bsuid_linked_to_phone")
        if contact is None:
            if not create:
                return None
            contact = await self._create(workspace_id, identity, profile or Profile())
        else:
            changed = []
            if identity.bsuid and contact.bsuid_index != bidx:
                await self._set_bsuid(contact, identity.bsuid)
                changed.append("bsuid")
            if identity.phone and contact.phone_index != pidx:
                await self._set_phone(contact, identity.phone)
                changed.append("phone")
            if profile is not None:
                changed += await self._set_profile(contact, profile)
            if changed:
                contact.updated_at = clock.now()
                await self._audit("contact.updated", contact, fields=changed, source="whatsapp")
        self._seen[(workspace_id, identity)] = (contact, profile)
        return contact

    async def _create(self, workspace_id: int, identity: Identity, profile: Profile) -> Contact:
        """A new contact. Its creation is audited with the batch (see ``created``)."""
        now = clock.now()
        contact = Contact(workspace_id=workspace_id, created_at=now, updated_at=now)
        reserved = self._reserved.get(workspace_id)
        if reserved:
            contact.id = reserved.pop(0)  # its data key was made with the batch's (prefetch)
        await repo.add(self.db, contact)
        if identity.phone:
            await self._set_phone(contact, identity.phone)
        if identity.bsuid:
            await self._set_bsuid(contact, identity.bsuid)
        await self._set_profile(contact, profile)
        self.created.setdefault(workspace_id, []).append(contact.id)
        self._unchecked.append((contact, identity))
        if not self.defer_suppression:
            await self.check_suppressed()
        return contact

    async def check_suppressed(self) -> None:
        """New contacts whose phone or BSUID opted out before (then were erased) start opted out
        (docs/consent.md, suppression list)."""
        pending, self._unchecked = self._unchecked, []
        alive = [(c, i) for c, i in pending if any(c.id in ids for ids in self.created.values())]
        if alive:
            await suppression.apply_to_new(self.db, self.vault, alive, self.actor)

    def forget(self, contact_id: int) -> None:
        for key, (value, _) in list(self._seen.items()):
            if value.id == contact_id:
                del self._seen[key]

    async def merge(self, *, keep: Contact, absorb: Contact, reason: str) -> Contact:
        """Fold ``absorb`` into ``keep``: its conversations, messages, preferences and consent
        decisions move over (re-sealed under ``keep``'s key), then it is deleted and its key
        destroyed."""
        from connectx.conversations import service as conversations
        from connectx.messages import service as messages

        workspace_id = keep.workspace_id
        if self.before_merge is not None:
            await self.before_merge()
        await self.db.flush()
        phone = await self._open(absorb, "phone", absorb.phone_enc)
        bsuid = await self._open(absorb, "bsuid", absorb.bsuid_enc)
        name = await self._open(absorb, "name", absorb.name_enc)
        await messages.reassign_contact(self.db, self.vault, workspace_id, absorb.id, keep.id)
        await conversations.reassign_contact(self.db, absorb.id, keep.id)
        await repo.move_preference_events(self.db, absorb.id, keep.id)
        for state in await consent.states(self.db, subject_of(absorb.id)):
            if not state.decided:
                continue
            mine = await consent.current_state(
                self.db, subject_of(keep.id), state.purpose, state.channel
            )
            if mine.decided and mine.since and state.since and mine.since >= state.since:
                continue
            await consent.record(
                self.db,
                subject=subject_of(keep.id),
                workspace_id=workspace_id,
                purpose=state.purpose,
                channel=state.channel,
                granted=state.granted,
                source=state.source or "import",
                wording=f"Carried over from contact {absorb.id}, merged into this contact.",
                notice_version="contact-merge",
                actor=self.actor,
            )
        absorbed_id = absorb.id
        self.forget(absorbed_id)
        self._forget_indexes(absorb)
        await repo.delete_contact(self.db, absorbed_id)
        self.db.expunge(absorb)
        for created in self.created.values():
            if absorbed_id in created:
                created.remove(absorbed_id)
        if phone and keep.phone_enc is None:
            await self._set_phone(keep, phone)
        if bsuid and keep.bsuid_enc is None:
            await self._set_bsuid(keep, bsuid)
        if name and keep.name_enc is None:
            keep.name_enc = await self._seal(keep, "name", name)
            await name_search.index(self.db, self.vault, keep, name)
        keep.updated_at = clock.now()
        await self.db.flush()
        await self._audit("contact.merged", keep, merged=absorbed_id, reason=reason)
        if self.on_merge is not None:
            self.on_merge(keep.id, absorbed_id)
        await self.vault.destroy_subject(workspace_id, subject_of(absorbed_id), actor=self.actor)
        return keep

    async def rectify(
        self, contact: Contact, *, name: str | None, phone: str | None, source: str
    ) -> list[str]:
        """Correct the name and/or phone (sealed value and keyed hash) at the person's request;
        the fields changed. 409 when another contact of the workspace has that phone."""
        changed = []
        if phone is not None and contact.phone_index != await self._index(
            contact.workspace_id, "phone", phone
        ):
            _, other = await self._find(
                contact.workspace_id, await self._index(contact.workspace_id, "phone", phone), None
            )
            if other is not None and other.id != contact.id:
                from connectx.kit.errors import Conflict

                raise Conflict(
                    "Another contact of this workspace has that number: merge them first.",
                    field="phone",
                )
            await self._set_phone(contact, phone)
            changed.append("phone")
        if name is not None and name != await self._open(contact, "name", contact.name_enc):
            contact.name_enc = await self._seal(contact, "name", name)
            await name_search.index(self.db, self.vault, contact, name)
            changed.append("name")
        if changed:
            contact.updated_at = clock.now()
            await self.db.flush()
            await self._audit("contact.updated", contact, fields=changed, source=source)
        self.forget(contact.id)
        return changed

    # -- what system messages announce --------------------------------------------------------
    async def apply_system(
        self, contact: Contact, system: dict[str, Any], at: datetime | None
    ) -> Contact:
        kind = text(system.get("type"))
        workspace_id = contact.workspace_id
        if kind == "user_changed_number":
            phone = phone_of(system.get("wa_id") or system.get("new_wa_id"))
            if phone:
                _, other = await self._find(
                    workspace_id, await self._index(workspace_id, "phone", phone), None
                )
                if other is not None and other.id != contact.id:
                    contact = await self.merge(keep=contact, absorb=other, reason=kind)
                if (
                    contact.phone_enc is None
                    or await self._open(contact, "phone", contact.phone_enc) != phone
                ):
                    await self._set_phone(contact, phone)
                    await self._changed(contact, ["phone"], kind)
        elif kind == "user_changed_user_id":
            bsuid = text(system.get("user_id")) or text(system.get("new_user_id"))
            if bsuid:
                other, _ = await self._find(
                    workspace_id, None, await self._index(workspace_id, "bsuid", bsuid)
                )
                if other is not None and other.id != contact.id:
                    contact = await self.merge(keep=contact, absorb=other, reason=kind)
                if (
                    contact.bsuid_enc is None
                    or await self._open(contact, "bsuid", contact.bsuid_enc) != bsuid
                ):
                    await self._set_bsuid(contact, bsuid)
                    await self._changed(contact, ["bsuid"], kind)
        elif kind == "customer_identity_changed":
            contact.identity_changed_at = at or clock.now()
            await self._changed(contact, ["identity_changed_at"], kind)
        self.forget(contact.id)
        return contact

    async def _changed(self, contact: Contact, fields: list[str], reason: str) -> None:
        contact.updated_at = clock.now()
        await self._audit(
            "contact.updated", contact, fields=fields, source="whatsapp", reason=reason
        )

    # -- marketing preferences ------------------------------------------------------------------
    async def record_preference(
        self,
        contact: Contact,
        channel_id: int,
        category: str,
        value: str,
        detail: str | None,
        at: datetime | None,
    ) -> bool:
        """Record a stop/resume once; a marketing decision also goes to the consent ledger.
        Returns False for a repeat of an event already recorded."""
        occurred = at or clock.now()
        new_id = await repo.add_preference_event(
            self.db,
            {
                "workspace_id": contact.workspace_id,
                "channel_id": channel_id,
                "contact_id": contact.id,
                "category": category[:64],
                "value": value[:32],
                "occurred_at": occurred,
                "created_at": clock.now(),
            },
        )
        if new_id is None:
            return False
        if category == "marketing_messages" and value in ("stop", "resume"):
            await consent.record(
                self.db,
                subject=subject_of(contact.id),
                workspace_id=contact.workspace_id,
                purpose="marketing",
                channel="whatsapp",
                granted=value == "resume",
                source="whatsapp_user_preferences",
                wording=detail
                or f"User requested to {value} marketing messages (WhatsApp setting)",
                notice_version="whatsapp-user-preferences",
                actor=subject_of(contact.id),
            )
        return True

    def touch_inbound(self, contact: Contact, at: datetime) -> None:
        """Move ``last_inbound_at`` forward, in memory without marking the contact changed;
        :meth:`write_inbound` writes them all in one statement (as
        ``Conversations.record_message`` does)."""
        if contact.last_inbound_at is None or at > contact.last_inbound_at:
            set_committed_value(contact, "last_inbound_at", at)
            self._inbound[contact.id] = contact

    async def write_inbound(self) -> None:
        """Write what :meth:`touch_inbound` moved (the processor: before the batch's flush)."""
        moved, self._inbound = self._inbound, {}
        await repo.write_last_inbound(self.db, list(moved.values()))

    # -- reading --------------------------------------------------------------------------------
    async def view(self, contact: Contact) -> ContactView:
        profile = json.loads(await self._open(contact, "profile", contact.profile_enc) or "{}")
        return ContactView(
            id=contact.id,
            name=await self._open(contact, "name", contact.name_enc),
            phone=await self._open(contact, "phone", contact.phone_enc),
            bsuid=await self._open(contact, "bsuid", contact.bsuid_enc),
            username=profile.get("username"),
            created_at=contact.created_at,
            last_inbound_at=contact.last_inbound_at,
            identity_changed_at=contact.identity_changed_at,
        )


def search_phone(raw: str) -> str:
    """A phone typed by a person, in the form contacts are keyed by (``+<digits>``, E.164 for
    valid numbers; Meta's test numbers are accepted too)."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    if raw.strip().startswith("00"):
        digits = digits[2:]
    if not 6 <= len(digits) <= 15 or set(raw) - set("+0123456789 -()."):
        raise InvalidInput(
            "Search by phone in international form, e.g. +971501234567.", field="phone"
        )
    return "+" + digits


async def list_contacts(
    db: AsyncSession,
    principal: Principal,
    *,
    phone: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ContactView], str | None]:
    """A page of the workspace's contacts, newest first; ``phone`` finds one by blind index."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    contacts = Contacts(db, principal.actor)
    index = await phone_index(contacts.vault, ws, search_phone(phone)) if phone else None
    before = paging.decode_id(cursor) if cursor else None
    rows = await repo.page(db, ws, index, before, paging.check_limit(limit) + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    views = [await contacts.view(c) for c in rows]
    await _mark_restricted(db, views)
    if views:
        await audit.record_view(
            db,
            actor=principal.actor,
            action="contacts.viewed",
            workspace_id=ws,
            ip=principal.ip,
            data={"contacts": [v.id for v in views], "search": "phone" if phone else None},
        )
    return views, paging.encode(rows[-1].id) if more else None


async def get_contact(db: AsyncSession, principal: Principal, contact_id: int) -> ContactView:
    assert principal.workspace_id is not None
    contact = await repo.get(db, principal.workspace_id, contact_id)
    view = await Contacts(db, principal.actor).view(contact)
    await _mark_restricted(db, [view])
    await audit.record_view(
        db,
        actor=principal.actor,
        action="contact.viewed",
        subject=subject_of(contact.id),
        workspace_id=principal.workspace_id,
        ip=principal.ip,
    )
    return view


async def names(db: AsyncSession, workspace_id: int, ids: list[int]) -> dict[int, ContactView]:
    """Views of several contacts (for lists that show who a conversation is with)."""
    contacts = Contacts(db)
    found = await repo.get_many(db, workspace_id, ids)
    await contacts.vault.warm(workspace_id, [subject_of(i) for i in found])
    return {cid: await contacts.view(c) for cid, c in found.items()}
