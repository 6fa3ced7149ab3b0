"""The erasure log, re-applied after a restore.

Erasing a subject destroys their data key (crypto-shredding: every ciphertext of theirs, in the
database and in every backup, becomes unreadable) and deletes their rows. A restored backup may
bring rows back that were deleted after it was taken: ciphertexts nobody can open, but also what
is not encrypted (ids, timestamps, blind indexes, memberships). The key store, which lives apart
from the data and is not restored with it, is the log of erasures: every subject whose newest key
is destroyed, or whose key was destroyed after the backup was taken. :func:`reapply` deletes what
the restore brought back of each, through the eraser registered for the subject's kind.

Erasers are registered per subject prefix; a subsystem with subjects of its own registers one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.backups import repository as repo
from connectx.privacy import keystore
from connectx.privacy.vault import PLATFORM

# (data session, workspace id or None, the id after the prefix) -> rows removed
Eraser = Callable[[AsyncSession, int | None, int], Awaitable[int]]

_erasers: dict[str, Eraser] = {}


def register(prefix: str, eraser: Eraser) -> None:
    _erasers[prefix] = eraser


async def _user(db: AsyncSession, _workspace_id: int | None, user_id: int) -> int:
    return await repo.delete_mail_of(db, f"user:{user_id}") + await repo.delete_user(db, user_id)


async def _invitation(db: AsyncSession, _workspace_id: int | None, invitation_id: int) -> int:
    mail = await repo.delete_mail_of(db, f"invitation:{invitation_id}")
    return mail + await repo.delete_invitation(db, invitation_id)


async def _contact(db: AsyncSession, workspace_id: int | None, contact_id: int) -> int:
    """An erased contact is anonymised (docs/retention.md): the restored rows lose who they
    were again, and keep their shape (an anonymised contact in the backup changes nothing)."""
    from connectx.retention import contacts

    if workspace_id is None:
        return 0
    return sum((await contacts.anonymise(db, [contact_id])).values())


register("user", _user)
register("invitation", _invitation)
register("contact", _contact)


def _workspace_of(scope: str) -> int | None:
    if scope == PLATFORM:
        return None
    prefix, _, number = scope.partition(":")
    return int(number) if prefix == "ws" and number.isdigit() else None


async def delete_subject_rows(db: AsyncSession, workspace_id: int | None, subject: str) -> int:
    """Remove the rows of an erased subject (after their key was destroyed). Returns how many
    rows went; 0 for a subject kind without an eraser."""
    prefix, _, number = subject.partition(":")
    eraser = _erasers.get(prefix)
    if eraser is None or not number.isdigit():
        return 0
    return await eraser(db, workspace_id, int(number))


async def reapply(db: AsyncSession, since: datetime) -> tuple[int, int]:
    """Delete again what a restored backup (taken at ``since``) holds of erased subjects.
    Returns (subjects, rows)."""
    async with keystore.session() as ks:
        erased = await repo.erased_subjects(ks, since)
    subjects = rows = 0
    for item in erased:
        removed = await delete_subject_rows(db, _workspace_of(item.scope), item.subject)
        if removed:
            subjects += 1
            rows += removed
    return subjects, rows
