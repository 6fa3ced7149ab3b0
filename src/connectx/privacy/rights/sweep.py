"""The inventory-driven part of erasure: every table linked to a subject that no dedicated step
handles is swept by its columns' declarations.

* Personal columns resting on a legal obligation (consent proof, the audit floor) are kept.
* Other personal columns are set to NULL where they may be; a row with such a column that may not
  be NULL is deleted.
* Tables with no personal column keep their rows (ids, states, times: the shape reports count).

For contacts the sweep runs as a step of :func:`connectx.retention.contacts.anonymise` (registered
with ``also``), so inactivity anonymisation and a restore's re-application of an erasure cover a
new table (notes, labels, attributes, …) the day it lands, without anyone remembering to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.kit.inventory import Basis
from connectx.privacy.rights import repository as repo
from connectx.privacy.rights.base import Subject
from connectx.privacy.rights.records import Found, tables_for

# Tables whose erasure has a dedicated step (contacts: retention's anonymise; users: the account
# row and its cascade) or that record the request itself.
DEDICATED = frozenset(
    {"contacts", "messages", "media_files", "outbox_messages", "users", "privacy_exports"}
)


@dataclass
class Swept:
    cleared: dict[str, int] = field(default_factory=dict)  # table -> rows anonymised
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    kept: dict[str, int] = field(default_factory=dict)  # table -> rows kept by law


def _personal(found: Found) -> tuple[list[str], list[str], list[str]]:
    """(kept by law, nullable, not nullable) personal columns of a table."""
    legal, nullable, required = [], [], []
    for name, decl in found.declarations().items():
        if not decl.personal:
            continue
        if decl.basis is Basis.LEGAL_OBLIGATION:
            legal.append(name)
        elif found.table.c[name].nullable:
            nullable.append(name)
        else:
            required.append(name)
    return legal, nullable, required


async def sweep(db: AsyncSession, subject: Subject) -> Swept:
    """Anonymise or delete, per the inventory, what ``subject`` has in tables without a
    dedicated step."""
    out = Swept()
    for found in tables_for(subject):
        if found.table.name in DEDICATED or not found.about:
            continue
        table = found.table
        where = found.where(subject)
        legal, nullable, required = _personal(found)
        if required:
            if n := await repo.delete_rows(db, table, where):
                out.deleted[table.name] = n
            continue
        if nullable and (n := await repo.clear_columns(db, table, where, nullable)):
            out.cleared[table.name] = n
        if legal and (n := await repo.count_rows(db, table, where)):
            out.kept[table.name] = n
    return out


async def sweep_contacts(db: AsyncSession, ids: list[int]) -> int:
    """The sweep for contacts being anonymised (a step of retention's ``anonymise``)."""
    total = 0
    for contact_id, workspace_id in sorted((await repo.workspaces_of_contacts(db, ids)).items()):
        swept = await sweep(db, Subject.contact(workspace_id, contact_id))
        total += sum(swept.cleared.values()) + sum(swept.deleted.values())
    return total
