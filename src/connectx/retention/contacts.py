"""Contacts without activity: who they are is anonymised, what they did stays countable.

A contact is idle when nothing has happened with them for the period of ``contact_inactivity``
(per workspace where the workspace chose one): no message either way, no send queued, no consent
decision, no change to the contact. Anonymising one (:func:`anonymise`) clears its identifying
columns, the content of its messages and outbox rows, deletes its media files once the
transaction commits, and destroys its data key (crypto-shredding: every copy, backups included,
becomes unreadable). The contact, conversation and message rows stay, without anyone in them, so
counts and reports keep their totals. Consent records stay as proof (``consent_proof``).

The same function re-applies a contact's erasure after a backup restore
(:mod:`connectx.backups.erasure`): it changes nothing on a contact already anonymised. A
subsystem whose table holds more of a contact's personal data adds a step with :func:`also`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from connectx.models.consent import ConsentRecord
from connectx.models.contact import Contact
from connectx.models.message import Message
from connectx.models.outbox import OutboxMessage
from connectx.retention import contacts_repository as repo

# Columns that say who the contact is (declared ``contact_inactivity``).
IDENTITY = ("phone_index", "phone_enc", "bsuid_index", "bsuid_enc", "name_enc", "profile_enc")
MESSAGE_CONTENT = (
    "body_enc",
    "content_enc",
    "raw_enc",
    "reaction_enc",
    "media_id",
    "media_mime_type",
    "media_sha256",
)

# (session, contact ids) -> rows changed; runs in the anonymising transaction.
Step = Callable[[AsyncSession, list[int]], Awaitable[int]]
_steps: dict[str, Step] = {}


def also(name: str, step: Step) -> None:
    """Another table's part of a contact's personal data, cleared with the contact."""
    _steps[name] = step


def idle(cutoff: datetime) -> ColumnElement[bool]:
    """No activity with the contact since ``cutoff`` (its creation is checked by the rule's
    anchor)."""
    subject = ConsentRecord.subject == _subject_sql()
    return and_(
        or_(Contact.last_inbound_at.is_(None), Contact.last_inbound_at < cutoff),
        Contact.updated_at < cutoff,
        ~exists().where(
            Message.contact_id == Contact.id,
            or_(Message.sent_at >= cutoff, Message.created_at >= cutoff),
        ),
        ~exists().where(
            OutboxMessage.contact_id == Contact.id,
            or_(
                OutboxMessage.created_at >= cutoff,
                OutboxMessage.status.in_(("pending", "sending")),
            ),
        ),
        ~exists().where(subject, ConsentRecord.created_at >= cutoff),
    )


def _subject_sql() -> ColumnElement[Any]:
    from connectx.retention.rules import ref

    return ref("contact", Contact.id)


async def anonymise(db: AsyncSession, ids: list[int], *, actor: str = "system") -> dict[str, int]:
    """Everything of the contacts ``ids`` but their rows' shape: identity, message content,
    outbox payloads, media files (after commit), other subsystems' parts, and their keys
    (destroyed at once in the key store, audited with the key ids in this transaction).
    Idempotent. Returns counts for the audit event."""
    if not ids:
        return {}
    owners = await repo.workspaces_of(db, ids)
    counts = {
        "messages": await repo.clear_messages(db, ids, MESSAGE_CONTENT),
        "files": await _media(db, ids),
        "outbox": await repo.clear_outbox(db, ids),
    }
    for name, step in sorted(_steps.items()):
        counts[name] = await step(db, ids)
    counts["contacts"] = await repo.clear_identity(db, ids, IDENTITY)
    counts["keys_destroyed"] = await _destroy_keys(db, owners, actor)
    return {k: v for k, v in counts.items() if v}


async def _media(db: AsyncSession, ids: list[int]) -> int:
    from connectx.db.session import after_commit
    from connectx.media import store

    keys = await repo.clear_media(db, ids)

    async def remove() -> None:
        for key in keys:
            store.delete(key)

    if keys:
        after_commit(db, remove)
    return len(keys)


async def _destroy_keys(db: AsyncSession, owners: dict[int, int], actor: str) -> int:
    from connectx.audit import service as audit
    from connectx.privacy.vault import Vault

    vault = Vault(None)
    destroyed: list[int] = []
    for contact_id, workspace_id in sorted(owners.items()):
        info = await vault.key_info(workspace_id, f"contact:{contact_id}")
        if info is not None and not info.destroyed:
            destroyed.append(info.id)
            await vault.destroy_subject(workspace_id, f"contact:{contact_id}")
    if destroyed:
        await audit.record(
            db,
            actor=actor,
            action="keys.subject_destroyed",
            data={"key_ids": destroyed, "reason": "retention", "count": len(destroyed)},
        )
    return len(destroyed)


# What other tables hold of a contact (notes, attributes, ...), swept by their inventory
# declarations: anonymising a contact, and re-applying an erasure after a restore, cover a new
# table the day it lands (docs/privacy-rights.md).
from connectx.privacy.rights.sweep import sweep_contacts  # noqa: E402

also("inventory", sweep_contacts)
