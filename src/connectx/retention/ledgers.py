"""Pruning the append-only tables, deliberately: the audit log's oldest entries past the audit
floor, and the consent records of people who are gone, past the consent-proof period.

Both tables refuse UPDATE and DELETE in the database. The one way out is a permit
(``ledger_prunes``) written in the same transaction as the delete, that reaches exactly the rows
being removed; each batch is audited with counts.

* **Audit log** (``audit_floor``): entries go oldest first and only as a prefix (a chain cannot
  have holes). Before a batch goes, the id and hash of its last entry are recorded in the key
  store (:func:`connectx.audit.service.prune_anchor`) and in the permit: ``connectx audit
  verify`` then checks the remaining chain starts exactly there, so tampering is still caught,
  including entries cut off the start. Pruning stops at the first entry under a legal hold.
* **Consent ledger** (``consent_proof``): records are the proof of a person's choices and the
  source of their current state, so nothing is pruned while the person is a user or an
  identifiable contact. Once they are gone (account deleted, contact erased or anonymised), all
  their records go together when the newest is older than the period.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from connectx.audit import repository as audit_repo
from connectx.audit import service as audit
from connectx.db.session import unit_of_work
from connectx.kit.inventory import Retention
from connectx.retention import ledgers_repository as repo


@dataclass(frozen=True)
class Ledger:
    name: str
    table: str
    retention: Retention
    count: Callable[[datetime], Awaitable[tuple[int, int]]]  # cutoff -> (due, held)
    prune: Callable[[datetime, int, str], Awaitable[int]]  # cutoff, batch, actor -> removed
    describe: str


async def _audit_count(cutoff: datetime) -> tuple[int, int]:
    async with unit_of_work() as db:
        return await repo.audit_count(db, cutoff, await repo.audit_stop(db, cutoff))


async def _audit_prune(cutoff: datetime, batch: int, actor: str) -> int:
    """One batch of the oldest entries (0 when nothing is left to prune)."""
    async with unit_of_work() as db:
        await audit_repo.lock_chain(db)  # no entry is appended meanwhile (SQLite: the write lock)
        rows = await repo.audit_oldest(db, await repo.audit_stop(db, cutoff), batch)
        if not rows:
            return 0
        (first_id, _), (last_id, last_hash) = rows[0], rows[-1]
        await audit.prune_anchor(last_id, last_hash, len(rows))
        # The event goes first: it follows the current head, so the chain stays whole.
        await audit.record(
            db,
            actor=actor,
            action="retention.deleted",
            data={
                "rule": "audit_events",
                "table": "audit_events",
                "class": str(Retention.AUDIT_FLOOR),
                "count": len(rows),
                "up_to_id": last_id,
            },
        )
        await repo.permit(
            db, "audit_events", up_to_id=last_id, rows=len(rows), last_hash=last_hash, actor=actor
        )
        removed = await repo.delete_audit(db, first_id, last_id)
    return removed


async def _consent_count(cutoff: datetime) -> tuple[int, int]:
    async with unit_of_work() as db:
        due = await repo.consent_subjects(db, cutoff, None)
        held = await repo.consent_subjects(db, cutoff, None, held=True)
    return sum(n for _, _, n in due), sum(n for _, _, n in held)


async def _consent_prune(cutoff: datetime, batch: int, actor: str) -> int:
    async with unit_of_work() as db:
        subjects = await repo.consent_subjects(db, cutoff, max(1, batch // 10))
        removed = 0
        for subject, up_to_id, rows in subjects:
            await repo.permit(
                db, "consent_records", subject=subject, up_to_id=up_to_id, rows=rows, actor=actor
            )
            removed += await repo.delete_consent(db, subject, up_to_id)
        if subjects:
            await audit.record(
                db,
                actor=actor,
                action="retention.deleted",
                data={
                    "rule": "consent_records",
                    "table": "consent_records",
                    "class": str(Retention.CONSENT_PROOF),
                    "count": removed,
                    "subjects": len(subjects),
                },
            )
    return removed


LEDGERS = (
    Ledger(
        "consent_records",
        "consent_records",
        Retention.CONSENT_PROOF,
        _consent_count,
        _consent_prune,
        "consent records of people who are gone",
    ),
    Ledger(
        "audit_events",
        "audit_events",
        Retention.AUDIT_FLOOR,
        _audit_count,
        _audit_prune,
        "the audit log's oldest entries (the chain is re-anchored)",
    ),
)
