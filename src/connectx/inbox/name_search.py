"""Finding contacts by name without storing names in the clear (docs/inbox.md, "Search").

A contact's name is normalised (Unicode NFKD, accents dropped, case-folded), split into words,
and each word and each of its prefixes from two characters (up to 12) is stored as a keyed
HMAC bound to the workspace (``contact_name_tokens``). A query is normalised the same way; a
contact matches when every query word matches one of its words or word prefixes.

The trade-off: someone holding the database but not the key store learns, per workspace, which
contacts share a name word (or its prefix) and how common each is, not the words themselves;
workspaces cannot be correlated (the workspace is inside the hash). The rows are deleted with
the contact and rewritten when the name changes.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from connectx.inbox import repository as repo
from connectx.models.contact import Contact
from connectx.privacy.vault import Vault

MIN_PREFIX = 2
MAX_PREFIX = 12
MAX_WORDS = 8
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return [w for w in _WORD.findall(plain) if w][:MAX_WORDS]


def grams(name: str) -> set[str]:
    """The words of ``name`` and their prefixes of 2..12 characters."""
    out: set[str] = set()
    for word in words(name):
        out.add(word)
        for n in range(MIN_PREFIX, min(len(word), MAX_PREFIX) + 1):
            out.add(word[:n])
    return out


def query_grams(query: str) -> list[str]:
    """What a query looks up: each word of two characters or more, cut to the longest indexed
    prefix."""
    return [w[:MAX_PREFIX] for w in words(query) if len(w) >= MIN_PREFIX]


async def _hash(vault: Vault, workspace_id: int, gram: str) -> bytes:
    return await vault.blind_index("contact_name", f"{workspace_id}|{gram}")


async def index(db: AsyncSession, vault: Vault, contact: Contact, name: str | None) -> None:
    """(Re)write ``contact``'s name tokens in the caller's transaction.

    The hashes are computed now; the rows are written when the transaction commits, all
    contacts of the transaction in two statements (intake renames or creates up to a thousand
    contacts in one batch)."""
    values = [f"{contact.workspace_id}|{g}" for g in grams(name or "")]
    hashes = set(await vault.blind_indexes("contact_name", values))
    pending: dict[int, tuple[int, list[bytes]]] = db.info.setdefault(_PENDING, {})
    pending[contact.id] = (contact.workspace_id, sorted(hashes))


_PENDING = "contact_name_tokens"


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Runs inside the async session's commit (greenlet), so the sync API is usable here."""
    pending: dict[int, tuple[int, list[bytes]]] | None = session.info.pop(_PENDING, None)
    if pending:
        repo.write_name_tokens(session, pending)


async def matching_contacts(db: AsyncSession, workspace_id: int, query: str) -> Any | None:
    """A subquery of the contact ids whose name matches every word of ``query`` (None: the
    query has no word to look up)."""
    wanted = query_grams(query)
    if not wanted:
        return None
    vault = Vault(db)
    hashes = sorted({await _hash(vault, workspace_id, w) for w in wanted})
    return repo.contacts_with_tokens(workspace_id, hashes)


BACKFILL_BATCH = 500


async def backfill(db: AsyncSession, after_id: int = 0, batch: int = BACKFILL_BATCH) -> int | None:
    """Write the name tokens of up to ``batch`` contacts (any workspace, ids above
    ``after_id``) that have a name but no tokens: contacts named before name search existed.
    Returns the last contact id looked at, or None when there are no more. Idempotent: a
    contact that has tokens is skipped, and the tokens are written as intake writes them."""
    from connectx.contacts.service import subject_of

    found = await repo.contacts_without_name_tokens(db, after_id, batch)
    if not found:
        return None
    vault = Vault(db)
    by_workspace: dict[int, list[Contact]] = {}
    for contact in found:
        by_workspace.setdefault(contact.workspace_id, []).append(contact)
    for workspace_id, contacts in by_workspace.items():
        await vault.warm(workspace_id, [subject_of(c.id) for c in contacts])
        for contact in contacts:
            name = await vault.decrypt_or_none(
                workspace_id, subject_of(contact.id), "contacts.name", contact.name_enc
            )
            if name:  # an erased contact's name cannot be read: it stays unsearchable
                await index(db, vault, contact, name)
    return found[-1].id
